package hollow

import (
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// acceptLoop serves SSH connections until the listener closes.
func (n *Node) acceptLoop() {
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.done {
			n.mu.Unlock()
			_ = nc.Close()
			return
		}
		n.conns[nc] = true
		n.mu.Unlock()
		n.cluster.wg.Add(1)
		go func() {
			defer n.cluster.wg.Done()
			defer func() {
				n.mu.Lock()
				delete(n.conns, nc)
				n.mu.Unlock()
				_ = nc.Close()
			}()
			n.serveConn(nc)
		}()
	}
}

// serveConn runs one SSH connection: sessions (exec), streamlocal channels to
// the Engine's socket, and direct-tcpip channels to the node's own ports.
func (n *Node) serveConn(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(nc, n.sshCfg)
	if err != nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer sc.Close()
	go func() {
		for r := range reqs {
			// keepalive@openssh.com and the like: answered, not acted on.
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() { n.serveSession(ch, creqs) })
		case "direct-streamlocal@openssh.com":
			var p struct {
				Path      string
				Reserved  string
				Reserved2 uint32
			}
			if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil || p.Path != dockerSocket {
				_ = nch.Reject(ssh.ConnectionFailed, "connect failed")
				continue
			}
			n.forward(nch, n.docker)
		case "direct-tcpip":
			var p struct {
				Host       string
				Port       uint32
				OriginHost string
				OriginPort uint32
			}
			if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
				_ = nch.Reject(ssh.ConnectionFailed, "connect failed")
				continue
			}
			target := n.cluster.node(p.Host)
			if p.Host == "127.0.0.1" || p.Host == "localhost" {
				target = n
			}
			if target == nil || !target.dashboardListens(int(p.Port)) {
				_ = nch.Reject(ssh.ConnectionFailed, "connect failed")
				continue
			}
			n.forward(nch, target.dash)
		default:
			_ = nch.Reject(ssh.UnknownChannelType, "unknown channel type")
		}
	}
}

// forward accepts a forwarding channel and hands it to the server behind l.
func (n *Node) forward(nch ssh.NewChannel, l *chanListener) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	if !l.deliver(channelConn(ch, n.Address)) {
		_ = ch.Close()
	}
}

// dockerSocket is where the Engine listens on a node.
const dockerSocket = "/var/run/docker.sock"

// serveSession answers one session's exec request; env and pty requests are
// accepted and ignored, a shell request is refused.
func (n *Node) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		switch r.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				_ = r.Reply(false, nil)
				return
			}
			_ = r.Reply(true, nil)
			go ssh.DiscardRequests(reqs) // signals: the commands end by themselves
			status := n.exec(p.Command, ch)
			_ = ch.CloseWrite()
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			return
		case "env", "pty-req":
			if r.WantReply {
				_ = r.Reply(true, nil)
			}
		default:
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}
}

// chanListener is a net.Listener fed with connections by the SSH server.
type chanListener struct {
	name  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(name string) *chanListener {
	return &chanListener{name: name, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to the listener's server; false once it is closed.
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// Accept implements net.Listener.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *chanListener) Addr() net.Addr { return pipeAddr(l.name) }

type pipeAddr string

func (a pipeAddr) Network() string { return "ssh-channel" }
func (a pipeAddr) String() string  { return string(a) }

// chConn adapts an SSH channel to net.Conn for the in-process HTTP servers.
type chConn struct {
	ssh.Channel
	addr string
}

func channelConn(ch ssh.Channel, addr string) net.Conn { return &chConn{Channel: ch, addr: addr} }

func (c *chConn) LocalAddr() net.Addr              { return pipeAddr(c.addr) }
func (c *chConn) RemoteAddr() net.Addr             { return pipeAddr("controller") }
func (c *chConn) SetDeadline(time.Time) error      { return nil }
func (c *chConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chConn) SetWriteDeadline(time.Time) error { return nil }
func (c *chConn) CloseWrite() error                { return c.Channel.CloseWrite() }
