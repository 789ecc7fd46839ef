// Package raydash is a Go client of the Ray dashboard's HTTP API (the head
// node, port 8265 by default): version and GCS health, the node lists, the
// cluster status, the Jobs REST API and the Serve REST API.
//
// The client speaks the real Ray paths and JSON shapes. It never assumes the
// dashboard is directly reachable: give Config.HTTPClient a transport whose
// DialContext tunnels (for example over SSH) and every request goes that way.
// When the cluster uses token authentication (RAY_AUTH_MODE=token), set
// Config.Token; it is sent as "Authorization: Bearer <token>" and never appears
// in errors, logs or String output.
package raydash
