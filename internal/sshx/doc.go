// Package sshx is the SSH transport to one node: authentication, host key
// verification, exec, sudo, upload, and dialing sockets on the node.
package sshx
