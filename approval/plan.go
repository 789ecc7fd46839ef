package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// PlanItem is one planned change on one node: the one plan item type of the
// SDK. Checkpoints produce them (checkpoint.Plan), approvers see them
// (Request.Plan), and the plan digest covers every field, Target included.
type PlanItem struct {
	// Node is the node's ID, or "*" for the whole cluster.
	Node string `json:"node"`
	// Action is a short verb: "remove-container", "create", "file", ...
	Action string `json:"action"`
	// Detail says it for people.
	Detail string `json:"detail,omitempty"`
	// Target is what exactly the item acts on, as it was when planned.
	Target *Target `json:"target,omitempty"`
}

// Target kinds.
const (
	TargetContainer = "container"
	TargetImage     = "image"
	TargetFile      = "file"
	TargetDirectory = "directory"
	TargetProcess   = "process"
	TargetPackage   = "package"
	TargetService   = "service"
	TargetGroup     = "group"
	TargetNode      = "node"
)

// Target is the machine-readable object of a plan item: enough to find it
// again at run time and to tell whether it changed since it was planned
// (a container by ID, an image by ID, a file by path and SHA-256, a process
// by pid and start time). Only the fields of its Kind are set.
type Target struct {
	// Kind is one of the Target* constants.
	Kind string `json:"kind"`
	// Name is the container, image reference, package, service, group or
	// user name.
	Name string `json:"name,omitempty"`
	// ID is the container's or image's full ID as found when planning
	// (empty: it did not exist).
	ID string `json:"id,omitempty"`
	// Image and ImageID are a container's image reference and image ID.
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"` // the container's image ID (empty: not known)
	// Spec is the digest of the wanted container spec.
	Spec string `json:"spec,omitempty"`
	// Path is a file's or directory's absolute path on the node.
	Path string `json:"path,omitempty"`
	// SHA256 is a file's content digest as found when planning (empty: the
	// file did not exist); Want is the digest it is to have.
	SHA256 string `json:"sha256,omitempty"`
	Want   string `json:"want,omitempty"` // the SHA-256 the file is to have
	// UID and Mode are the wanted owner and permission bits (-1 / 0: unset).
	UID  *int   `json:"uid,omitempty"`
	Mode uint32 `json:"mode,omitempty"` // the wanted permission bits (0: unset)
	// PID and StartTime name a process: its start time (clock ticks after
	// boot, /proc/<pid>/stat field 22) tells it from a later process that
	// got the same pid.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"` // clock ticks after boot
	// Command is a process's command name.
	Command string `json:"command,omitempty"`
}

// String renders the target compactly: "container ray_head 0123456789ab".
func (t *Target) String() string {
	if t == nil {
		return ""
	}
	parts := []string{t.Kind}
	for _, s := range []string{t.Name, t.Path, short(t.ID)} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if t.PID != 0 {
		parts = append(parts, fmt.Sprintf("pid %d (start %d)", t.PID, t.StartTime))
	}
	if t.SHA256 != "" {
		parts = append(parts, "sha256 "+short(t.SHA256))
	}
	return strings.Join(parts, " ")
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// PlanDigest is "sha256:" and the hex SHA-256 of the canonical encoding of
// a checkpoint's plan (its items sorted by node, action, detail and target;
// JSON). Equal plans have equal digests whatever the order their items came
// in; a changed target changes the digest.
func PlanDigest(checkpoint string, items []PlanItem) string {
	items = slices.Clone(items)
	key := func(it PlanItem) string {
		b, _ := json.Marshal(it.Target)
		return string(b)
	}
	slices.SortFunc(items, func(a, b PlanItem) int {
		for _, c := range []int{
			strings.Compare(a.Node, b.Node),
			strings.Compare(a.Action, b.Action),
			strings.Compare(a.Detail, b.Detail),
		} {
			if c != 0 {
				return c
			}
		}
		return strings.Compare(key(a), key(b))
	})
	if items == nil {
		items = []PlanItem{}
	}
	b, _ := json.Marshal(struct {
		V          int        `json:"v"`
		Checkpoint string     `json:"checkpoint"`
		Items      []PlanItem `json:"items"`
	}{2, checkpoint, items})
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// RenderPlan renders plan items as an aligned table, one line per item:
// the one plan renderer (checkpoint.Plan.String and Request.Render use it).
func RenderPlan(items []PlanItem) string {
	if len(items) == 0 {
		return "  (nothing to change)\n"
	}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	for _, it := range items {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", it.Node, it.Action, it.Detail)
	}
	_ = tw.Flush()
	return sb.String()
}
