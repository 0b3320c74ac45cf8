package gitsafe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// plant makes dir a folder that git takes for a repository of its own
// when it looks from there (HEAD, config, objects, refs at its top, one
// commit), whose config runs a command that makes marker.
func plant(t *testing.T, dir, marker string) {
	t.Helper()
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"--git-dir=" + dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	commit := git("commit-tree", git("mktree"), "-m", "planted")
	git("update-ref", "refs/heads/main", commit)
	config := "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = ..\n\tfsmonitor = \"touch '" + marker + "'\"\n"
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunTakesNoPlantedRepository: git run plainly in such a folder runs
// the planted command (the attack is real); through Run it does not, and
// git says it found no repository it may use.
func TestRunTakesNoPlantedRepository(t *testing.T) {
	testenv.Command(t, "git", "git")
	dir := filepath.Join(t.TempDir(), "src")
	plain, guarded := filepath.Join(t.TempDir(), "plain"), filepath.Join(t.TempDir(), "guarded")
	plant(t, dir, plain)
	plainGit := exec.Command("git", "status", "--porcelain")
	plainGit.Dir = dir
	plainGit.Run()
	if _, err := os.Stat(plain); err != nil {
		t.Fatalf("plain git status did not run the planted command: the test proves nothing")
	}
	// The same folder, its command now making another marker.
	config := must(os.ReadFile(filepath.Join(dir, "config")))
	os.WriteFile(filepath.Join(dir, "config"), []byte(strings.Replace(string(config), plain, guarded, 1)), 0o644)
	for _, args := range [][]string{{"status", "--porcelain"}, {"ls-files", "-z"}, {"rev-parse", "--show-toplevel"}, {"log", "-1"}} {
		_, err := Run(context.Background(), dir, false, args...)
		if _, statErr := os.Stat(guarded); statErr == nil {
			t.Fatalf("git %s ran the planted command", args[0])
		}
		if err == nil || !strings.Contains(err.Error(), "bare repository") {
			t.Errorf("git %s: %v, want a refusal of the bare repository", args[0], err)
		}
	}
}

// TestEnvDropsRepositoryVariables: no variable that names another
// repository or adds configuration reaches git.
func TestEnvDropsRepositoryVariables(t *testing.T) {
	t.Setenv("GIT_DIR", "/elsewhere")
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
	t.Setenv("GIT_CONFIG_VALUE_0", "touch /tmp/x")
	t.Setenv("GIT_SSH_COMMAND", "ssh -i key")
	env := strings.Join(Env(), "\n")
	for _, gone := range []string{"GIT_DIR=", "GIT_CONFIG_COUNT=", "GIT_CONFIG_KEY_0=", "GIT_CONFIG_VALUE_0="} {
		if strings.Contains(env, gone) {
			t.Errorf("%s reaches git", gone)
		}
	}
	if !strings.Contains(env, "GIT_SSH_COMMAND=ssh -i key") {
		t.Error("GIT_SSH_COMMAND, the user's own, does not reach git")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
