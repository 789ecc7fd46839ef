package checkpoint

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// UnknownCheckpointError reports a name that is not in the list.
type UnknownCheckpointError struct {
	// Name is the name asked for.
	Name string
	// Valid lists the names of the list, in order.
	Valid []string
}

// Error lists the valid names.
func (e *UnknownCheckpointError) Error() string {
	return fmt.Sprintf("unknown checkpoint %q; valid checkpoints: %s", e.Name, strings.Join(e.Valid, ", "))
}

// ErrDuplicateName is returned when a list would hold two checkpoints of the same name.
var ErrDuplicateName = errors.New("duplicate checkpoint name")

// ErrInvalidName is returned for a name that is not lower-case letters, digits and dashes.
var ErrInvalidName = errors.New("invalid checkpoint name (want lower-case letters, digits and '-')")

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// List is an ordered, editable list of checkpoints with unique names.
// It is not safe for concurrent use; edit it before handing it to a Runner.
type List struct {
	cps []Checkpoint
}

// NewList returns a list of cps in order.
func NewList(cps ...Checkpoint) (*List, error) {
	l := &List{}
	for _, c := range cps {
		if err := l.Append(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Names returns the names in order.
func (l *List) Names() []string {
	out := make([]string, len(l.cps))
	for i, c := range l.cps {
		out[i] = c.Name()
	}
	return out
}

// Checkpoints returns the checkpoints in order (a copy of the slice).
func (l *List) Checkpoints() []Checkpoint { return slices.Clone(l.cps) }

// Get returns the checkpoint called name.
func (l *List) Get(name string) (Checkpoint, error) {
	i, err := l.index(name)
	if err != nil {
		return nil, err
	}
	return l.cps[i], nil
}

func (l *List) index(name string) (int, error) {
	for i, c := range l.cps {
		if c.Name() == name {
			return i, nil
		}
	}
	return -1, &UnknownCheckpointError{Name: name, Valid: l.Names()}
}

func (l *List) check(c Checkpoint, except string) error {
	if !nameRE.MatchString(c.Name()) {
		return fmt.Errorf("checkpoint %q: %w", c.Name(), ErrInvalidName)
	}
	if c.Name() != except && slices.Contains(l.Names(), c.Name()) {
		return fmt.Errorf("checkpoint %q: %w", c.Name(), ErrDuplicateName)
	}
	return nil
}

// Append adds c at the end.
func (l *List) Append(c Checkpoint) error {
	if err := l.check(c, ""); err != nil {
		return err
	}
	l.cps = append(l.cps, c)
	return nil
}

// InsertBefore inserts c before the checkpoint called name.
func (l *List) InsertBefore(name string, c Checkpoint) error {
	i, err := l.index(name)
	if err != nil {
		return err
	}
	if err := l.check(c, ""); err != nil {
		return err
	}
	l.cps = slices.Insert(l.cps, i, c)
	return nil
}

// InsertAfter inserts c after the checkpoint called name.
func (l *List) InsertAfter(name string, c Checkpoint) error {
	i, err := l.index(name)
	if err != nil {
		return err
	}
	if err := l.check(c, ""); err != nil {
		return err
	}
	l.cps = slices.Insert(l.cps, i+1, c)
	return nil
}

// Remove removes the checkpoint called name.
func (l *List) Remove(name string) error {
	i, err := l.index(name)
	if err != nil {
		return err
	}
	l.cps = slices.Delete(l.cps, i, i+1)
	return nil
}

// Replace puts c in the place of the checkpoint called name.
func (l *List) Replace(name string, c Checkpoint) error {
	i, err := l.index(name)
	if err != nil {
		return err
	}
	if err := l.check(c, name); err != nil {
		return err
	}
	l.cps[i] = c
	return nil
}
