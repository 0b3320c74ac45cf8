// Package gitsafe runs git on the build machine so that nothing of a
// project runs: a folder of the project made to look like a repository
// is never taken for one, no fsmonitor command or hook runs, only the
// https, ssh and git transports are allowed, and no repository,
// configuration or object store comes from the environment.
package gitsafe

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Guards are the settings every git call of djship starts with. Git
// takes a bare repository only when djship names it, runs no fsmonitor
// command and no hook, and reaches repositories over https, ssh and git
// only (not ext::, fd:: or plain http).
var Guards = []string{
	"-c", "safe.bareRepository=explicit",
	"-c", "core.fsmonitor=false",
	"-c", "core.hooksPath=" + os.DevNull,
	"-c", "protocol.allow=never",
	"-c", "protocol.https.allow=always",
	"-c", "protocol.ssh.allow=always",
	"-c", "protocol.git.allow=always",
}

// envBlocked are the environment variables that would make git use
// another repository, work tree, index or object store than the one
// djship found, stop it looking for one, or add configuration.
var envBlocked = []string{
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES",
	"GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
}

// Env is the environment of djship's git calls: this process's, less
// envBlocked and the GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n pairs, with
// prompts off and messages in English.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(envBlocked, k) || strings.HasPrefix(k, "GIT_CONFIG_KEY_") || strings.HasPrefix(k, "GIT_CONFIG_VALUE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

// Run runs git in dir with arguments (never through a shell) after
// Guards, and returns its trimmed output. allowFile lets git reach a
// repository on this machine (the file transport), for a source.git that
// names one.
func Run(ctx context.Context, dir string, allowFile bool, args ...string) (string, error) {
	full := append([]string{}, Guards...)
	if allowFile {
		full = append(full, "-c", "protocol.file.allow=always")
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	cmd.Env = Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", commandName(args), msg)
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

// commandName is the git command among args, past the options before
// it, for messages.
func commandName(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c":
			i++
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return strings.Join(args, " ")
}
