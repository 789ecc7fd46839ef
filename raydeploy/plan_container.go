package raydeploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
)

// containerPlan is the plan of one service's container on one node.
type containerPlan struct {
	spec dockerx.ContainerSpec
	// image is the item that brings the image to the node (nil: present).
	image *checkpoint.PlanItem
	// item is the container change: create, replace, start or rejoin (nil:
	// the container is as wanted).
	item *checkpoint.PlanItem
	// found is the container as planning found it; Run checks it again
	// before acting and refuses the node if it changed.
	found *approval.Target
}

// planContainer compares a node's image and container with spec, the wanted
// container of service svc.
func (d *Deployer) planContainer(ctx context.Context, e *dockerx.Engine, n Node, svc string, spec dockerx.ContainerSpec) (containerPlan, error) {
	cp := containerPlan{spec: spec}
	imageID, err := e.ImageID(ctx, spec.Image)
	switch {
	case errors.Is(err, dockerx.ErrNotFound):
		cp.image = &checkpoint.PlanItem{Node: n.ID(), Action: actionImage, Detail: d.imageVerb() + " " + spec.Image,
			Target: &approval.Target{Kind: approval.TargetImage, Name: spec.Image}}
	case err != nil:
		return cp, err
	}
	set := func(action, detail string) {
		cp.item = &checkpoint.PlanItem{Node: n.ID(), Action: action, Detail: detail, Target: cp.found}
	}
	st, err := e.Inspect(ctx, spec.Name)
	switch {
	case errors.Is(err, dockerx.ErrNotFound):
		cp.found = containerTarget(spec.Name, nil, spec.Digest())
		set(actionCreate, fmt.Sprintf("start container %s (%s)", spec.Name, svc))
	case err != nil:
		return cp, err
	default:
		cp.found = containerTarget(spec.Name, &st, spec.Digest())
		switch {
		case st.Labels[dockerx.LabelSpec] != spec.Digest() || (imageID != "" && st.ImageID != imageID):
			set(actionReplace, fmt.Sprintf("replace container %s: its spec or image changed", spec.Name))
		case imageID == "":
			set(actionReplace, fmt.Sprintf("replace container %s: its image is to be brought to the node", spec.Name))
		case !st.Running:
			set(actionStart, fmt.Sprintf("start stopped container %s (%s)", spec.Name, st.Status))
		}
	}
	return cp, nil
}

// items are the plan's items, image first.
func (cp containerPlan) items() []checkpoint.PlanItem {
	var out []checkpoint.PlanItem
	for _, it := range []*checkpoint.PlanItem{cp.image, cp.item} {
		if it != nil {
			out = append(out, *it)
		}
	}
	return out
}

// ensure checks that the container is still as planned (else a
// *checkpoint.StaleError) and makes it match the spec; a rejoin removes it
// first.
func (d *Deployer) ensurePlanned(ctx context.Context, e *dockerx.Engine, n Node, cp containerPlan) (dockerx.EnsureResult, error) {
	changed, err := containerChanged(ctx, e, cp.found)
	if err != nil {
		return dockerx.EnsureResult{}, err
	}
	if changed != "" {
		it := checkpoint.PlanItem{Node: n.ID(), Action: "ensure", Detail: cp.spec.Name, Target: cp.found}
		if cp.item != nil {
			it = *cp.item
		}
		return dockerx.EnsureResult{}, &checkpoint.StaleError{Node: n.ID(), Item: it, Changed: changed}
	}
	if cp.item != nil && cp.item.Action == actionRejoin && cp.found.ID != "" {
		if err := e.Remove(ctx, cp.found.ID); err != nil {
			return dockerx.EnsureResult{}, err
		}
	}
	return e.Ensure(ctx, cp.spec)
}
