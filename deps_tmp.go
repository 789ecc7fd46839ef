package sdk
import (
 _ "github.com/docker/docker/client"
 _ "golang.org/x/crypto/ssh"
 _ "golang.org/x/crypto/ssh/knownhosts"
 _ "golang.org/x/crypto/ssh/agent"
 _ "github.com/hashicorp/go-multierror"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/testutil"
 _ "github.com/google/go-cmp/cmp"
 _ "github.com/ory/dockertest/v3"
 _ "go.yaml.in/yaml/v3"
 _ "github.com/cenkalti/backoff/v4"
 _ "golang.org/x/term"
)

