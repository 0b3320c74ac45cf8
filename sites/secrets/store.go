package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Store is one environment's encrypted secrets file and who may read it.
type Store struct {
	// Path is the encrypted file.
	Path string
	// Recipients are the public keys from secrets.recipients.
	Recipients []string
	// Force saves even when none of the identities held could open the
	// result: to hand the secrets over to other people on purpose. Mage
	// sets it from -force=true or DJSHIP_SECRETS_FORCE=1.
	Force bool
}

// CheckAccess refuses recipients that cannot be read, and recipients
// that none of ids could open: saving for them would lock the holder out
// of the secrets. It compares public keys and never asks for a
// passphrase. Force skips the second check.
func (s Store) CheckAccess(ids []Identity) error {
	if _, err := ParseRecipients(s.Recipients); err != nil {
		return err
	}
	if s.Force {
		return nil
	}
	for _, r := range s.Recipients {
		for _, id := range ids {
			if id.Opens(r) {
				return nil
			}
		}
	}
	held := "none"
	if len(ids) > 0 {
		names := make([]string, len(ids))
		for i, id := range ids {
			pub := "its public key is unknown"
			if p := id.PublicKey(); p != "" {
				pub = describeRecipient(p)
			}
			names[i] = fmt.Sprintf("%s (%s)", id.Source, pub)
		}
		held = strings.Join(names, ", ")
	}
	return fmt.Errorf("refusing to encrypt %s: none of the identities you hold could open it again, and you would lose these secrets.\n"+
		"  The recipients in secrets.recipients: %s\n"+
		"  The identities you hold: %s\n"+
		"  Add one of your public keys to secrets.recipients in the site file. To hand the secrets over on purpose, run again with -force=true (mage secrets:recipients -force=true) or with DJSHIP_SECRETS_FORCE=1",
		s.Path, describeRecipients(s.Recipients), held)
}

// Load decrypts the file; a file that does not exist yet holds nothing.
func (s Store) Load(ids []Identity) (map[string]string, []byte, error) {
	if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil, nil
	}
	plaintext, err := Decrypt(s.Path, ids, s.Recipients)
	if err != nil {
		return nil, nil, err
	}
	values, err := Parse(plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return values, plaintext, nil
}

// Save checks plaintext and encrypts it for the recipients. It refuses,
// unless Force, when none of ids (the identities the caller holds) could
// open the result.
func (s Store) Save(ids []Identity, plaintext []byte) error {
	if _, err := Parse(plaintext); err != nil {
		return err
	}
	if err := s.CheckAccess(ids); err != nil {
		return err
	}
	recipients, err := ParseRecipients(s.Recipients)
	if err != nil {
		return err
	}
	return Encrypt(s.Path, plaintext, recipients)
}

// Set adds or replaces one value.
func (s Store) Set(ids []Identity, name, value string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("the value of %s is not valid UTF-8 text", name)
	}
	values, _, err := s.Load(ids)
	if err != nil {
		return err
	}
	values[name] = value
	return s.Save(ids, Format(values))
}

// Reencrypt encrypts the file again for the current recipients, after the
// list changed.
func (s Store) Reencrypt(ids []Identity) error {
	_, plaintext, err := s.Load(ids)
	if err != nil || plaintext == nil {
		return err
	}
	return s.Save(ids, plaintext)
}

// problemMark starts each comment line that Edit puts above the text to
// show what is wrong with it; such lines at the top are never saved.
const problemMark = "# !! "

// Edit decrypts the secrets into a private temporary file (0600, in a
// 0700 folder), runs editor on it, and encrypts the result again. An
// invalid result (bad YAML, a bad name, a name written twice) opens the
// editor again on what was typed, with the problems as comments at the
// top, until the text is valid; saving it unchanged or an editor that
// fails gives up and fails. A result without any secret, when there were
// some, is refused: secrets are removed one by one, or all at once by
// deleting the encrypted file. The temporary file is removed on every
// path out: success, an editor that fails, giving up, Ctrl-C. When
// anything fails the encrypted file is left as it was.
func (s Store) Edit(ctx context.Context, ids []Identity, editor string, stdin io.Reader, stdout, stderr io.Writer) error {
	// Before the editor opens, so that nothing typed is lost to it.
	if err := s.CheckAccess(ids); err != nil {
		return err
	}
	values, plaintext, err := s.Load(ids)
	if err != nil {
		return err
	}
	if plaintext == nil {
		plaintext = Format(values)
	}
	dir, err := os.MkdirTemp("", "djship-secrets-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Ctrl-C or a TERM while the editor runs: remove the plain text, then
	// stop.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-signals:
			os.RemoveAll(dir)
			fmt.Fprintf(stderr, "\nsecrets: interrupted; %s is unchanged\n", s.Path)
			if n, ok := sig.(syscall.Signal); ok {
				os.Exit(128 + int(n))
			}
			os.Exit(130)
		case <-done:
		}
	}()

	file := filepath.Join(dir, filepath.Base(s.Path)+".yaml")
	if editor == "" {
		editor = "vi"
	}
	// text is what was typed last, shown is the file the editor opens:
	// text, below the problems found in it.
	text, shown := plaintext, plaintext
	var problems *ParseError
	for {
		if err := os.WriteFile(file, shown, 0o600); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", editor+` "$1"`, "editor", file)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("the editor (%s) failed, %s is unchanged: %w", editor, s.Path, err)
		}
		edited, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		typed := withoutProblems(edited)
		if bytes.Equal(typed, text) {
			if problems == nil {
				fmt.Fprintf(stdout, "no change: %s is unchanged\n", s.Path)
				return nil
			}
			return fmt.Errorf("%s is unchanged: the text was saved unchanged and still has these problems:\n%w", s.Path, problems)
		}
		after, err := Parse(typed)
		if errors.As(err, &problems) {
			text, shown = typed, append(problemHeader(problems), typed...)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s is unchanged: %w", s.Path, err)
		}
		if len(after) == 0 && len(values) > 0 {
			return fmt.Errorf("%s is unchanged: the edit removed every secret (there were %d). To remove some, delete their lines and keep the others; to remove every secret of this environment, delete %s itself", s.Path, len(values), s.Path)
		}
		if err := s.Save(ids, typed); err != nil {
			return fmt.Errorf("%s is unchanged: %w", s.Path, err)
		}
		fmt.Fprintf(stdout, "encrypted %s for %d recipients\n", s.Path, len(s.Recipients))
		return nil
	}
}

// problemHeader is the comment block above a text with problems, its
// line numbers those of the file the editor shows.
func problemHeader(e *ParseError) []byte {
	intro := []string{
		"Not saved: fix what is wrong below and save; these lines go away by themselves.",
		"To give up, save without changing anything, or quit the editor with an error (:cq in vi).",
	}
	offset := len(intro) + len(e.Problems)
	var b bytes.Buffer
	for _, line := range intro {
		b.WriteString(problemMark + line + "\n")
	}
	for _, p := range e.Problems {
		b.WriteString(problemMark + "  " + p.shift(offset).String() + "\n")
	}
	return b.Bytes()
}

// withoutProblems removes the problem lines that Edit put at the top.
func withoutProblems(text []byte) []byte {
	for bytes.HasPrefix(text, []byte(problemMark)) || bytes.HasPrefix(text, []byte(strings.TrimSpace(problemMark)+"\n")) {
		_, rest, found := bytes.Cut(text, []byte("\n"))
		if !found {
			return nil
		}
		text = rest
	}
	return text
}

// Show prints the names of the secrets, with values masked unless reveal.
func Show(w io.Writer, path string, values map[string]string, reveal bool) error {
	fmt.Fprintf(w, "%s: %d secrets\n", path, len(values))
	for _, k := range sortedNames(values) {
		v := "********"
		if reveal {
			v = values[k]
		}
		fmt.Fprintf(w, "  %s = %s\n", k, v)
	}
	return nil
}
