// Package fence carries a fencing check in a context: code about to change
// something outside this process (a node, a state file) calls Check, and
// stops if the check fails, for instance because the cluster lock that
// allowed the change was taken over by another deployer.
package fence

import "context"

type key struct{}

// With returns a context whose Check calls check (after any check ctx
// already carries).
func With(ctx context.Context, check func() error) context.Context {
	if prev, ok := ctx.Value(key{}).(func() error); ok {
		inner := check
		check = func() error {
			if err := prev(); err != nil {
				return err
			}
			return inner()
		}
	}
	return context.WithValue(ctx, key{}, check)
}

// Check runs the context's fencing check; without one it returns nil.
func Check(ctx context.Context) error {
	if check, ok := ctx.Value(key{}).(func() error); ok {
		return check()
	}
	return nil
}
