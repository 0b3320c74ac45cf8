package remote

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fatih/color"
)

func TestOutputStep(t *testing.T) {
	color.NoColor = true
	var buf syncBuffer
	r := &Redactor{}
	r.Add("topsecret")
	out := NewOutput(&buf, r)
	out.Step("web1", "migrate", 1234*time.Millisecond, StatusChanged, nil)
	out.Step("web1", "reload", 0, StatusSkipped, nil)
	out.Step("web1", "collectstatic", 20*time.Millisecond, StatusFailed, errors.New("exit 1\nbad password topsecret"))
	want := "[web1] changed  migrate (1.234s)\n" +
		"[web1] skipped  reload\n" +
		"[web1] failed   collectstatic (20ms)\n" +
		"[web1]          exit 1\n" +
		"[web1]          bad password <redacted>\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLineWriterSplitsLines(t *testing.T) {
	color.NoColor = true
	var buf syncBuffer
	w := &lineWriter{out: NewOutput(&buf, nil), host: "h"}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\r\nthree"))
	w.Flush()
	if got := buf.String(); got != "[h] one\n[h] two\n[h] three\n" {
		t.Errorf("got %q", got)
	}
	if strings.Count(buf.String(), "\n") != 3 {
		t.Error("lines merged")
	}
}
