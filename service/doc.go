// Package service describes a containerized service that the SDK runs on a set
// of a cluster's nodes: the Ray head and workers, the monitoring stack and AI
// services are all a Spec. It is a leaf: it imports nothing of the SDK, so
// monitoring and tts describe their services with it without importing
// raydeploy, and raydeploy re-exports Spec as raydeploy.ServiceSpec (a type
// alias: one type, the name users of raydeploy see). Turning a Spec into a
// container on a node is the SDK's internal business (internal/dockerx).
package service
