// Package fstrust opens the state directory's files and directories without
// trusting the path: no symbolic link is followed, no open can block on a
// FIFO, and what was opened (not the path) is checked for kind, owner and
// mode. Write access by anyone else is refused; read access by others is
// repaired where the caller allows it, and reported.
package fstrust
