// Package fanout runs one function per node, a bounded number at a time,
// and collects the failures as *checkpoint.NodeError values in one
// *multierror.Error: the per-node parallelism every checkpoint uses.
package fanout
