package drivers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// installHint tells a developer how to get the drivers.
const installHint = "run `bash scripts/install-drivers.sh` from the repository root"

// Where scripts/install-drivers.sh puts what Debian does not package.
const (
	driversDirEnv     = "WAYPOINT_DRIVERS_DIR"
	driversDefaultDir = "/opt/waypoint-drivers"
	jdbcJarEnv        = "WAYPOINT_JDBC_JAR"
	jdbcDefaultJar    = "/usr/share/java/postgresql.jar" // Debian's libpostgresql-jdbc-java
)

// probeTimeout bounds checking that a driver is installed.
const probeTimeout = 60 * time.Second

// driver is one client library and how to run its script.
type driver struct {
	// Name is the column heading and the key of expectations.
	Name string
	// Script is the file under testdata/ that exercises every feature.
	Script string
	// find returns the command that runs script (an absolute path) and any
	// extra environment, or a *missingError when the driver is not installed.
	find func(script string) (argv, env []string, err error)
}

// drivers are the real drivers of the matrix, in table order.
var drivers = []driver{
	{Name: "psycopg", Script: "psycopg_matrix.py", find: python("psycopg")},
	{Name: "asyncpg", Script: "asyncpg_matrix.py", find: python("asyncpg")},
	{Name: "node-postgres", Script: "node_postgres_matrix.js", find: node("pg", "pg-copy-streams")},
	{Name: "postgres.js", Script: "postgresjs_matrix.js", find: node("postgres")},
	{Name: "pgJDBC", Script: "JdbcMatrix.java", find: java},
}

// missingError reports a driver or runtime that is not installed.
type missingError struct{ what string }

func (e *missingError) Error() string {
	return fmt.Sprintf("%s not installed; %s", e.what, installHint)
}

// python finds a Python 3 that imports module. Debian's python3-* packages
// install for /usr/bin/python3, which is tried before the python3 on PATH
// (a pyenv or venv interpreter does not see them).
func python(module string) func(string) ([]string, []string, error) {
	return func(script string) ([]string, []string, error) {
		for _, py := range []string{"/usr/bin/python3", "python3"} {
			path, err := exec.LookPath(py)
			if err != nil {
				continue
			}
			if probe(nil, path, "-c", "import "+module) == nil {
				return []string{path, "-u", script}, nil, nil
			}
		}
		return nil, nil, &missingError{what: fmt.Sprintf("Python module %q (Debian: python3-%s)", module, module)}
	}
}

// node finds Node.js and the npm packages, which install-drivers.sh puts in
// $WAYPOINT_DRIVERS_DIR/node/node_modules.
func node(packages ...string) func(string) ([]string, []string, error) {
	return func(script string) ([]string, []string, error) {
		path, err := exec.LookPath("node")
		if err != nil {
			return nil, nil, &missingError{what: "node"}
		}
		env := []string{"NODE_PATH=" + filepath.Join(driversDir(), "node", "node_modules")}
		for _, p := range packages {
			if probe(env, path, "-e", fmt.Sprintf("require.resolve(%q)", p)) != nil {
				return nil, nil, &missingError{what: fmt.Sprintf("npm package %q in %s", p, filepath.Join(driversDir(), "node"))}
			}
		}
		return []string{path, script}, env, nil
	}
}

// java finds a JDK (java runs a single source file since Java 11, with the
// compiler a JRE lacks) and the pgJDBC jar.
func java(script string) ([]string, []string, error) {
	path, err := exec.LookPath("java")
	if err != nil {
		return nil, nil, &missingError{what: "java (Debian: default-jdk-headless)"}
	}
	if _, err := exec.LookPath("javac"); err != nil {
		return nil, nil, &missingError{what: "a JDK; java is only a JRE (Debian: default-jdk-headless)"}
	}
	jar := os.Getenv(jdbcJarEnv)
	if jar == "" {
		jar = jdbcDefaultJar
	}
	if _, err := os.Stat(jar); err != nil {
		return nil, nil, &missingError{what: "pgJDBC at " + jar + " (Debian: libpostgresql-jdbc-java)"}
	}
	if err := probe(nil, path, "-version"); err != nil {
		return nil, nil, &missingError{what: "a working java: " + err.Error()}
	}
	return []string{path, "-cp", jar, script}, nil, nil
}

// driversDir is where install-drivers.sh installs npm packages.
func driversDir() string {
	if dir := os.Getenv(driversDirEnv); dir != "" {
		return dir
	}
	return driversDefaultDir
}

// probe runs a command that must succeed quietly.
func probe(env []string, argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isMissing reports whether err says something is not installed.
func isMissing(err error) bool {
	_, ok := errors.AsType[*missingError](err)
	return ok
}
