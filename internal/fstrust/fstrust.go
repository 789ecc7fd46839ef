package fstrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// UnsafeError reports a file or directory that is refused: a symbolic link,
// not the expected kind, owned by someone else, or writable by others.
type UnsafeError struct {
	// Path is the refused file or directory, as given.
	Path string
	// Reason says what is wrong with it and, where it can, what to do.
	Reason string
}

// Error says what is wrong and with what.
func (e *UnsafeError) Error() string { return fmt.Sprintf("%s refused: %s", e.Path, e.Reason) }

// Repair describes a permission fix applied to a path (only read access by
// others is ever repaired; write access by others is refused).
type Repair struct {
	// Path is the file or directory whose mode was changed.
	Path string
	// OldMode is its permission bits before the repair.
	OldMode fs.FileMode
	// NewMode is its permission bits after it.
	NewMode fs.FileMode
}

// String describes the repair for a log line.
func (r Repair) String() string {
	return fmt.Sprintf("%s was mode %04o, readable by others; set to %04o", r.Path, r.OldMode, r.NewMode)
}

// PrivateDir makes sure dir is a private directory of this user: created
// 0700 (with missing parents) when absent; then opened without following a
// final symbolic link and checked through the opened descriptor: a
// directory, owned by the effective user, not writable by group or others
// (refused: anyone could have planted content); readable or searchable by
// others is repaired to 0700 and reported in the returned Repair.
func PrivateDir(dir string) (*Repair, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if _, lerr := os.Lstat(dir); lerr != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		// It exists but is not a directory (or a link to one): the open says which.
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(dir, err, "a directory")
	}
	defer syscall.Close(fd)
	return checkFD(dir, fd, true, 0o700, RepairRead)
}

// Others says what Open does with a file that group or others may read.
type Others int

// What to do with read access by group or others.
const (
	AllowRead  Others = iota // fine (the file holds nothing secret)
	RepairRead               // chmod it to the perm given, and report it
	RefuseRead               // refuse it
)

// Open opens path with flags (O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC added:
// a symbolic link is refused and a FIFO put in a file's place cannot block)
// and checks the opened file: a regular file, owned by the effective user,
// not writable by group or others; read access by others as others says.
// A missing file gives an error matching fs.ErrNotExist.
func Open(path string, flags int, perm fs.FileMode, others Others) (*os.File, *Repair, error) {
	fd, err := syscall.Open(path, flags|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		}
		return nil, nil, openError(path, err, "a regular file")
	}
	rep, err := checkFD(path, fd, false, perm, others)
	if err != nil {
		syscall.Close(fd)
		return nil, nil, err
	}
	// Regular files ignore O_NONBLOCK; clear it so reads and writes behave as usual.
	if fl, ferr := fcntl(fd, syscall.F_GETFL, 0); ferr == nil {
		_, _ = fcntl(fd, syscall.F_SETFL, fl&^syscall.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), path), rep, nil
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func openError(path string, err error, want string) error {
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		err = syscall.ELOOP // with O_DIRECTORY, Linux says ENOTDIR for a link
	}
	switch {
	case errors.Is(err, syscall.ELOOP):
		return &UnsafeError{Path: path, Reason: "is a symbolic link (give the real path)"}
	case errors.Is(err, syscall.ENOTDIR):
		return &UnsafeError{Path: path, Reason: "is not " + want}
	case errors.Is(err, syscall.ENXIO):
		return &UnsafeError{Path: path, Reason: "is a FIFO or socket, not " + want}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// checkFD checks the opened descriptor.
func checkFD(path string, fd int, dir bool, repairTo fs.FileMode, others Others) (*Repair, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	kind := st.Mode & syscall.S_IFMT
	switch {
	case dir && kind != syscall.S_IFDIR:
		return nil, &UnsafeError{Path: path, Reason: "is not a directory"}
	case !dir && kind != syscall.S_IFREG:
		return nil, &UnsafeError{Path: path, Reason: "is not a regular file"}
	}
	if int(st.Uid) != os.Geteuid() {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by uid %d (this process)", st.Uid, os.Geteuid())}
	}
	mode := fs.FileMode(st.Mode & 0o777)
	if mode&0o022 != 0 {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("is writable by group or others (mode %04o): its content cannot be trusted; check it, then chmod go-w", mode)}
	}
	if mode&0o077 == 0 || others == AllowRead {
		return nil, nil
	}
	if others == RefuseRead {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("is readable by group or others (mode %04o); chmod go= it", mode)}
	}
	if err := syscall.Fchmod(fd, uint32(repairTo)); err != nil {
		return nil, fmt.Errorf("tighten mode of %s: %w", path, err)
	}
	return &Repair{Path: path, OldMode: mode, NewMode: repairTo}, nil
}
