package imagerelay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/raydeploy/sdk/internal/sshx"
)

// Node is one node the image goes to.
type Node struct {
	// ID names the node in results and errors.
	ID string
	// Conn is the controller's SSH connection to the node; its HostKey is
	// what the node's predecessor is told to expect.
	Conn *sshx.Conn
	// Address and Port are where the node's peers reach its sshd.
	Address string
	Port    int // the TCP port of the node's sshd
}

// Options tune Distribute.
type Options struct {
	// Chains is the number of pipelines (default 1): the controller sends
	// the archive once per chain, each chain is about len(nodes)/Chains long.
	Chains int
	// KeyLifetime bounds how long a hop's key is accepted, even if clean-up
	// fails (default one hour; the transfer itself must fit in it).
	KeyLifetime time.Duration
	// Logger receives progress and clean-up problems (nil: discard).
	Logger *slog.Logger
}

// Result says what Distribute did.
type Result struct {
	// Loaded are the nodes where docker load finished without error.
	Loaded []string
	// Failed maps the nodes of a chain whose load failed (or never got the
	// bytes) to why.
	Failed map[string]error
	// Skipped are the nodes left out because their predecessor could not
	// reach their SSH port.
	Skipped []string
	// ControllerBytes is how many archive bytes the controller sent.
	ControllerBytes int64
	// Arrived maps each loaded node to when its load finished, from the
	// start of the transfer.
	Arrived map[string]time.Duration
	// Received maps each node to when the last byte reached it (the last
	// node of a chain loads as it receives): the per-hop cost is the slope
	// along a chain.
	Received map[string]time.Duration
	// Chains are the pipelines used, node IDs in order.
	Chains [][]string
	// Setup is the time before the first byte was sent: probing, preparing
	// and connecting the hops.
	Setup time.Duration
}

// hop is one node's part in a chain.
type hop struct {
	node   Node
	dir    string // its relay directory
	token  string // marks its authorized_keys line
	next   *hop
	prev   *hop
	key    []byte // private key PEM for reaching next (nil at the tail)
	pub    ssh.PublicKey
	user   string
	loaded chan struct{}
}

// Distribute sends the docker-save archive at path to every node through
// chains of nodes, as described in the package documentation.
func Distribute(ctx context.Context, path string, nodes []Node, opts Options) (Result, error) {
	begin := time.Now()
	res := Result{Failed: map[string]error{}, Arrived: map[string]time.Duration{}, Received: map[string]time.Duration{}}
	if len(nodes) == 0 {
		return res, nil
	}
	if opts.Chains <= 0 {
		opts.Chains = 1
	}
	if opts.KeyLifetime <= 0 {
		opts.KeyLifetime = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, n := range nodes {
		if n.Conn == nil || n.Conn.HostKey() == nil {
			return res, fmt.Errorf("image relay: node %s: no verified SSH connection", n.ID)
		}
	}
	chains := split(nodes, opts.Chains)
	// Drop nodes their predecessor cannot reach; re-probe the new pairs.
	var skipped []string
	for {
		bad := probe(ctx, chains)
		if len(bad) == 0 {
			break
		}
		for i, c := range chains {
			chains[i] = filter(c, func(n Node) bool {
				if bad[n.ID] {
					skipped = append(skipped, n.ID)
					return false
				}
				return true
			})
		}
	}
	res.Skipped = skipped
	var hops [][]*hop
	for _, c := range chains {
		if len(c) == 0 {
			continue
		}
		hs, err := newChain(c)
		if err != nil {
			return res, err
		}
		hops = append(hops, hs)
		ids := make([]string, len(c))
		for i, n := range c {
			ids[i] = n.ID
		}
		res.Chains = append(res.Chains, ids)
	}
	all := func(yield func(*hop) bool) {
		for _, hs := range hops {
			for _, h := range hs {
				if !yield(h) {
					return
				}
			}
		}
	}
	defer cleanup(ctx, all, log)
	if err := setup(ctx, all, opts.KeyLifetime); err != nil {
		return res, err
	}
	connect(ctx, all, log)

	start := time.Now()
	res.Setup = start.Sub(begin)
	var sent atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, hs := range hops {
		wg.Go(func() {
			err := runChain(ctx, path, hs, &sent)
			// Each relay.sh waits for its successor: when the head returns,
			// the chain is done. Every node reports its own load.
			loaded, received, failed := collect(ctx, hs, err)
			mu.Lock()
			defer mu.Unlock()
			for id, at := range loaded {
				res.Loaded = append(res.Loaded, id)
				res.Arrived[id] = at.Sub(start)
			}
			for id, at := range received {
				res.Received[id] = at.Sub(start)
			}
			for id, err := range failed {
				res.Failed[id] = err
			}
		})
	}
	wg.Wait()
	res.ControllerBytes = sent.Load()
	return res, ctx.Err()
}

// split deals nodes round-robin-free into n consecutive chains.
func split(nodes []Node, n int) [][]Node {
	n = min(n, len(nodes))
	out := make([][]Node, n)
	size := (len(nodes) + n - 1) / n
	for i, nd := range nodes {
		out[i/size] = append(out[i/size], nd)
	}
	return out
}

func filter(ns []Node, keep func(Node) bool) []Node {
	var out []Node
	for _, n := range ns {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// probe has every node try a TCP connection to its successor's SSH port and
// returns the successors that did not answer.
func probe(ctx context.Context, chains [][]Node) map[string]bool {
	bad := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range chains {
		for i := 0; i+1 < len(c); i++ {
			from, to := c[i], c[i+1]
			wg.Go(func() {
				cmd := fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d' >/dev/null 2>&1", to.Address, to.Port)
				if _, err := from.Conn.Run(ctx, cmd); err != nil {
					mu.Lock()
					bad[to.ID] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return bad
}

// newChain makes the hops of one chain with a fresh key pair per link.
func newChain(c []Node) ([]*hop, error) {
	hs := make([]*hop, len(c))
	for i, n := range c {
		var rnd [12]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, err
		}
		hs[i] = &hop{node: n, token: "raydeploy-relay-" + hex.EncodeToString(rnd[:]), user: n.Conn.User(), loaded: make(chan struct{})}
	}
	for i := 0; i+1 < len(hs); i++ {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(priv, hs[i].token)
		if err != nil {
			return nil, err
		}
		sp, err := ssh.NewPublicKey(pub)
		if err != nil {
			return nil, err
		}
		hs[i].key, hs[i].pub = pem.EncodeToMemory(block), sp
		hs[i].next, hs[i+1].prev = hs[i+1], hs[i]
	}
	return hs, nil
}

// setup prepares every node in parallel, one SSH session each: its relay
// directory, relay script, key and known_hosts for its successor, and the
// authorized_keys line for its predecessor's key.
func setup(ctx context.Context, all func(func(*hop) bool), lifetime time.Duration) error {
	expiry := time.Now().UTC().Add(lifetime).Format("200601021504") + "Z" // Z: UTC, not the node's zone
	persist := max(int(lifetime.Seconds()), 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for h := range all {
		wg.Go(func() {
			out, err := h.node.Conn.Run(ctx, setupScript(h, expiry, persist), sshx.WithStdin(strings.NewReader(string(h.key))),
				sshx.WithDisplay("prepare the image relay"))
			if err == nil {
				h.dir = strings.TrimSpace(string(out.Stdout))
				if !strings.Contains(h.dir, "/.raydeploy-relay.") {
					err = fmt.Errorf("unexpected answer %q", out.Stdout)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("image relay: prepare node %s: %w", h.node.ID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// connect opens every hop's SSH connection at once, once every
// authorized_keys line is in place. A hop that fails here is logged and
// left to relay.sh, which then connects by itself.
func connect(ctx context.Context, all func(func(*hop) bool), log *slog.Logger) {
	var wg sync.WaitGroup
	for h := range all {
		if h.next == nil {
			continue
		}
		wg.Go(func() {
			q := sshx.Quote(h.dir)
			if _, err := h.node.Conn.Run(ctx, "sh "+q+"/connect.sh || { cat "+q+"/connect.out >&2; exit 1; }",
				sshx.WithDisplay("connect the image relay hop")); err != nil {
				log.Warn("image relay: hop not connected ahead; the relay connects by itself", "from", h.node.ID, "to", h.next.node.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// relayDir is where a hop's files live, under the login user's home: the
// token makes it unique, and setup creates it with mode 0700.
func relayDir(h *hop) string { return "$HOME/.raydeploy-relay." + h.token[len("raydeploy-relay-"):] }

func setupScript(h *hop, expiry string, persist int) string {
	dir := relayDir(h)
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\numask 077\nD=\"%s\"\nmkdir -m 700 \"$D\"\n", dir)
	if h.next != nil {
		n := h.next
		kh := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(n.node.Address, strconv.Itoa(n.node.Port)))}, n.node.Conn.HostKey())
		fmt.Fprintf(&b, "cat > \"$D/key\"\nprintf '%%s\\n' %s > \"$D/known_hosts\"\n", sshx.Quote(kh))
		base := fmt.Sprintf("ssh -F /dev/null -i \"$D/key\" -o UserKnownHostsFile=\"$D/known_hosts\" -o GlobalKnownHostsFile=/dev/null "+
			"-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 "+
			"-o Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com -S \"$D/ctl\" -p %d", n.node.Port)
		dest := sshx.Quote(n.user) + "@" + sshx.Quote(n.node.Address)
		// connect.sh: the hop's SSH connection, made before any byte
		// flows (every node at once, not one after the other along the
		// chain) and kept as a control master for relay.sh's session; it
		// ends when clean-up says so or after persist seconds without a
		// session. Should it fail, relay.sh connects by itself.
		fmt.Fprintf(&b, "cat > \"$D/connect.sh\" <<'CONNECT'\n"+
			"D=\"$(dirname \"$0\")\"\n"+
			"exec %s -o ControlMaster=yes -o ControlPersist=%d -N -f %s < /dev/null > \"$D/connect.out\" 2>&1\n"+
			"CONNECT\n", base, persist, dest)
		ssh := base + " -o ControlMaster=no " + dest + " relay"
		// relay.sh waits for its successor, so that the head's exit means
		// the chain is done.
		fmt.Fprint(&b, relayScript("tee -p \"$D/fwd\"", ssh+" < \"$D/fwd\" > \"$D/next.out\" 2>&1 &\nfwd=$!\n"))
	} else {
		b.WriteString("cat > /dev/null\n")
		fmt.Fprint(&b, relayScript("cat", ""))
	}
	if h.prev != nil {
		opts := "restrict,command=\"sh " + dirForKeys(h) + "/relay.sh\",expiry-time=\"" + expiry + "\""
		if a, err := netip.ParseAddr(h.prev.node.Address); err == nil {
			opts += ",from=\"" + a.String() + "\""
		}
		line := opts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.prev.pub))) + " " + h.token
		fmt.Fprintf(&b, "mkdir -p \"$HOME/.ssh\" && chmod 700 \"$HOME/.ssh\"\nprintf '%%s\\n' %s >> \"$HOME/.ssh/authorized_keys\"\n",
			strings.ReplaceAll(sshx.Quote(line), "@HOME@", "'\"$HOME\"'"))
	}
	b.WriteString("echo \"$D\"\n")
	return b.String()
}

// relayScript writes relay.sh: copy (tee to the next hop's fifo, or cat at
// the chain's end) keeps the stream in a file at the speed of the links,
// and docker load follows the file at its own pace, so that no load, the
// last node's included, holds up the stream; recv.at is when the last byte
// was in the file, load.rc the load's status and end. start launches the
// forwarding ssh (empty at the end of the chain). fd 3 carries stdin into
// the background copy (sh gives background jobs /dev/null).
func relayScript(copyCmd, start string) string {
	mk := ""
	wait := ""
	if start != "" {
		mk = "rm -f \"$D/fwd\" && mkfifo \"$D/fwd\" && "
		wait = "wait $fwd\n"
	}
	return "cat > \"$D/relay.sh\" <<'RELAY'\n" +
		"D=\"$(dirname \"$0\")\"\n" +
		mk + ": > \"$D/image.tar\" || exit 1\n" +
		start +
		"exec 3<&0\n" +
		"{ " + copyCmd + " > \"$D/image.tar\" <&3; r=$?; date +%s.%N > \"$D/recv.at\"; exit $r; } &\n" +
		"tp=$!\n" +
		"exec 3<&-\n" +
		"tail -c +1 -s 0.2 --pid=$tp -f \"$D/image.tar\" | docker load -q > \"$D/load.out\" 2>&1\n" +
		"rc=$?\n" +
		"wait $tp || rc=1\n" +
		"echo \"$rc $(date +%s.%N)\" > \"$D/load.rc\"\n" +
		"rm -f \"$D/image.tar\"\n" +
		wait +
		"exit $rc\n" +
		"RELAY\n"
}

// dirForKeys is the relay directory as authorized_keys must name it: sshd
// does not expand $HOME in command="...", so the script substitutes it.
func dirForKeys(h *hop) string {
	return "@HOME@/.raydeploy-relay." + h.token[len("raydeploy-relay-"):]
}

// runChain streams the archive into the chain's first node and waits for
// the whole chain.
func runChain(ctx context.Context, path string, hs []*hop, sent *atomic.Int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &counter{r: f, n: sent}
	_, err = hs[0].node.Conn.Run(ctx, "sh "+sshx.Quote(hs[0].dir)+"/relay.sh", sshx.WithStdin(r),
		sshx.WithDisplay("image relay (first node)"))
	return err
}

type counter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// collect reads every hop's load status (exit code and finish time) and the
// forwarding error of its predecessor.
func collect(ctx context.Context, hs []*hop, headErr error) (loaded, received map[string]time.Time, failed map[string]error) {
	loaded, received = map[string]time.Time{}, map[string]time.Time{}
	failed = map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() {
			q := sshx.Quote(h.dir)
			out, err := h.node.Conn.Run(ctx, "cat "+q+"/recv.at 2>/dev/null || echo; cat "+q+"/load.rc 2>/dev/null; echo; tail -c 400 "+q+"/load.out 2>/dev/null",
				sshx.WithDisplay("image relay status"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[h.node.ID] = err
				return
			}
			recv, rest, _ := strings.Cut(string(out.Stdout), "\n")
			if sec, err := strconv.ParseFloat(strings.TrimSpace(recv), 64); err == nil {
				received[h.node.ID] = time.Unix(0, int64(sec*1e9))
			}
			lines := strings.SplitN(rest, "\n", 2)
			f := strings.Fields(lines[0])
			if len(f) == 2 && f[0] == "0" {
				sec, _ := strconv.ParseFloat(f[1], 64)
				loaded[h.node.ID] = time.Unix(0, int64(sec*1e9))
				return
			}
			detail := ""
			if len(lines) > 1 {
				detail = strings.TrimSpace(lines[1])
			}
			switch {
			case len(f) == 0 && headErr != nil && h == hs[0]:
				failed[h.node.ID] = headErr
			case len(f) == 0:
				failed[h.node.ID] = errors.New("the image never arrived (a node before it in the chain failed)")
			default:
				failed[h.node.ID] = fmt.Errorf("docker load exited %s: %s", f[0], detail)
			}
		})
	}
	wg.Wait()
	return loaded, received, failed
}

// cleanup removes every hop's directory and authorized_keys line, even
// after ctx ended.
func cleanup(ctx context.Context, all func(func(*hop) bool), log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for h := range all {
		wg.Go(func() {
			script := fmt.Sprintf("D=\"%s\"\n[ -S \"$D/ctl\" ] && ssh -F /dev/null -S \"$D/ctl\" -O exit relay-hop >/dev/null 2>&1\nrm -rf \"$D\"\n", relayDir(h))
			if h.prev != nil {
				script += fmt.Sprintf("f=\"$HOME/.ssh/authorized_keys\"\n"+
					"if grep -qF %[1]s \"$f\" 2>/dev/null; then t=$(mktemp \"$HOME/.ssh/.authorized_keys.XXXXXX\") && "+
					"{ grep -vF %[1]s \"$f\" > \"$t\"; chmod 600 \"$t\" && mv -f \"$t\" \"$f\"; }; fi\n", sshx.Quote(h.token))
			}
			if _, err := h.node.Conn.Run(ctx, script, sshx.WithDisplay("clean up the image relay")); err != nil {
				log.Warn("image relay clean-up failed; its key expires by itself", "node", h.node.ID, "err", err)
			}
		})
	}
	wg.Wait()
}
