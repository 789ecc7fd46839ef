package raydeploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
)

// containerPlan compares a node's image and container with the wanted spec
// of service svc. imageMissing says the image must first reach the node;
// item, when not empty, is the container change (create, replace or start).
func containerPlan(ctx context.Context, e *dockerx.Engine, n Node, svc string, spec dockerx.ContainerSpec) (imageMissing bool, item checkpoint.PlanItem, err error) {
	imageID, err := e.ImageID(ctx, spec.Image)
	switch {
	case errors.Is(err, dockerx.ErrNotFound):
		imageMissing = true
	case err != nil:
		return false, item, err
	}
	set := func(action, detail string) {
		item = checkpoint.PlanItem{Node: n.ID(), Action: action, Detail: detail}
	}
	st, err := e.Inspect(ctx, spec.Name)
	switch {
	case errors.Is(err, dockerx.ErrNotFound):
		set(actionCreate, fmt.Sprintf("start container %s (%s)", spec.Name, svc))
	case err != nil:
		return imageMissing, item, err
	case st.Labels[dockerx.LabelSpec] != spec.Digest() || (imageID != "" && st.ImageID != imageID):
		set(actionReplace, fmt.Sprintf("replace container %s: its spec or image changed", spec.Name))
	case !st.Running:
		set(actionStart, fmt.Sprintf("start stopped container %s (%s)", spec.Name, st.Status))
	}
	return imageMissing, item, nil
}
