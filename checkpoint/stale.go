package checkpoint

import (
	"errors"
	"fmt"
)

// ErrStale means the world changed between the plan that was approved and
// the run: a target of the plan is not what it was when planned. Nothing of
// the node is touched; the next run plans (and asks) again, like Terraform's
// "saved plan is stale".
var ErrStale = errors.New("plan is stale")

// StaleError names the plan item whose target changed and what changed.
// Unwrap gives ErrStale.
type StaleError struct {
	// Node is the node's ID.
	Node string
	// Item is the plan item whose target changed.
	Item PlanItem
	// Changed says what changed since planning.
	Changed string
}

// Error reads "plan is stale: node w1: remove-container ray_head (container
// ray_head 0123456789ab): replaced since planning (now 89ab...): nothing done
// on this node; run again to plan anew".
func (e *StaleError) Error() string {
	what := e.Item.Action
	if e.Item.Target != nil {
		what += " " + e.Item.Target.String()
	}
	return fmt.Sprintf("%v: node %s: %s: %s; nothing was done on this node, run again to plan anew", ErrStale, e.Node, what, e.Changed)
}

// Unwrap returns ErrStale.
func (e *StaleError) Unwrap() error { return ErrStale }
