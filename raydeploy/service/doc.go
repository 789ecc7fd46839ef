// Package service describes a containerized service that the SDK runs on a set
// of a cluster's nodes: the Ray head and workers, the monitoring stack and AI
// services are all a Spec. The raydeploy package re-exports Spec as
// raydeploy.ServiceSpec; this package exists so that monitoring and tts can
// describe their services without importing raydeploy.
package service
