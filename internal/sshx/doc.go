// Package sshx is the SSH transport to one node: authentication, host key
// verification, exec, sudo, upload, and dialing sockets on the node.
//
// Dial connects (through a jump host if configured) with retries of
// transient failures and none of authentication or host key failures
// (ErrAuthFailed, ErrHostKeyMismatch, ErrHostKeyUnknown, all matching
// ErrNonRetryable). Host keys are always verified against a known_hosts
// file (HostKeys); trust-on-first-use records new hosts but never accepts
// a key that differs from a recorded one. A Conn is shared by every step
// that talks to its node: Run, Sudo, Upload, CommandConn, DialContext and
// DialUnix each open their own channel on it. Keepalives close a
// connection whose peer stopped answering. Pool keeps one Conn per node.
//
// Secrets (passwords, passphrases) never appear in argv, logs or errors:
// Secret redacts itself, and sudo's password is written to stdin only in
// answer to sudo's own prompt.
package sshx
