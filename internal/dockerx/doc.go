// Package dockerx drives one node's Docker Engine through a dialer (usually the
// node's SSH connection). It is the only package that imports the Docker SDK, so
// no Docker SDK type leaks into the public API.
package dockerx
