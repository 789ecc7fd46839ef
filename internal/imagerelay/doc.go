// Package imagerelay passes a docker-save archive from node to node so that
// the controller sends it once, not once per node.
//
// The nodes form a pipeline (or a few, Options.Chains): the controller
// streams the archive over its SSH connection into the first node of each
// chain, which loads it into its Docker Engine while passing the same bytes
// on to the next node, and so on. Each hop is an SSH connection between the
// two nodes, set up for this one transfer and removed afterwards:
//
//   - the controller makes a fresh ed25519 key pair per hop; the private key
//     goes to the sending node over the controller's SSH session (stdin,
//     never argv) into a 0700 directory in the login user's home;
//   - the receiving node's authorized_keys gets the public key with
//     restrict, command="sh <dir>/relay.sh" (nothing but the relay can run),
//     from="<sender address>" and expiry-time one hour ahead, so the key
//     cannot be used for anything else, from anywhere else, or later, even
//     if the clean-up never ran;
//   - the sender checks the receiver's host key against a known_hosts file
//     holding only the key the controller verified for it.
//
// Nothing listens on a new port: sshd, already running on every node,
// receives. Before the chain is built every node probes its successor's SSH
// port; a node its predecessor cannot reach is left out of the chain and
// reported in Result.Skipped, for the caller to side-load directly. The
// caller verifies the image ID on every node afterwards (Distribute only
// says where docker load ran), since a hop can fail midway. Clean-up removes
// the keys, the authorized_keys lines and the directories on every node,
// also when the transfer failed or ctx was cancelled.
//
// A node passes the bytes on as they arrive and keeps a copy on disk that
// its docker load follows, so a slow load holds up only its own node (the
// chain's last node too: it no longer paces the whole chain).
//
// Every hop's SSH connection is made before the first byte flows, all
// hops at once (an OpenSSH control master per hop, ended by clean-up): the
// handshakes do not add up along the chain.
//
// # Cost model
//
// With links of B bytes/s, an image of S bytes and N nodes, a direct
// side-load sends N*S bytes out of the controller's link: N*S/B. The relay
// sends S once and streams it through the chain: S/B + (N-1)*h, where h is
// the delay a hop adds (the slope of Result.Received along the chain), plus
// the nodes' own docker load, which follows the stream. scalebench -parts
// relay measured h between +0.002 s and +0.41 s on 4 and 8 testenv nodes
// (three runs on one 2-core machine under load averages of 15 to 57). For
// 200 nodes and a 1.5 GB image, with the worst h = 0.41 s: on 1 Gbit/s
// links direct takes 2400 s and the relay 12 + 199*0.41 = 93 s; on
// 10 Gbit/s, 240 s against 1.2 + 81 = 82 s (with h = 0.144 s, 41 s and
// 30 s). On one machine, where all "links" are memory copies on the same
// 2 cores, the relay is slower than direct side-load (x2.1 to x4.6
// measured): each hop adds an sshd, a tee, a file, a tail, an ssh client
// and the docker CLI, all competing for the CPUs the direct
// side-load uses for dockerd alone, and the stream ran at 2.5-5.5 MB/s through
// the chain. Relay where the controller's link is the bottleneck: many
// nodes, a big image, a remote controller.
//
// Nodes need POSIX sh, mkfifo, GNU tee (-p) and tail (--pid), the OpenSSH
// client, the docker CLI usable by the login user, and room for one copy of
// the archive in the login user's home while it passes (removed once loaded).
package imagerelay
