package testenv

import (
	"fmt"
	"os"
	"testing"

	"github.com/ory/dockertest/v3"
)

// RequireEnv is the environment variable that turns a missing Docker Engine
// into a test failure instead of a skip. CI sets it to 1.
const RequireEnv = "RAYDEPLOY_REQUIRE_DOCKER"

// Labels put on every container and network this package creates.
const (
	LabelTestenv = "io.raydeploy.testenv"
	LabelPID     = "io.raydeploy.testenv.pid"
	LabelHost    = "io.raydeploy.testenv.host"
)

// Connect returns a dockertest pool for the Engine named by DOCKER_HOST (or the
// default socket) after checking that the Engine answers.
func Connect() (*dockertest.Pool, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("testenv: docker client: %w", err)
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("testenv: no Docker Engine reachable: %w", err)
	}
	return pool, nil
}

// RequireDocker returns a pool connected to the Docker Engine, or skips the
// test with one line saying why when no Engine answers. With
// RAYDEPLOY_REQUIRE_DOCKER=1 a missing Engine fails the test instead.
func RequireDocker(t testing.TB) *dockertest.Pool {
	t.Helper()
	pool, err := Connect()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v (%s=1 requires it)", err, RequireEnv)
		}
		t.Skipf("integration test skipped: %v (set %s=1 to fail instead)", err, RequireEnv)
	}
	return pool
}

// RequireBinary skips (or, with RAYDEPLOY_REQUIRE_DOCKER=1, fails) the test
// when a program the test environment needs is missing.
func RequireBinary(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found (apt-get install %s, or ./scripts/setup --tests)", path, pkg)
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, RequireEnv)
		}
		t.Skipf("integration test skipped: %s", msg)
	}
}
