package confparse

import (
	"errors"
	"testing"
)

// FuzzParsers feeds every parser the same bytes: none may panic, and a
// failure must be a SyntaxError.
func FuzzParsers(f *testing.F) {
	for _, c := range nginxCases {
		f.Add([]byte(c.in))
	}
	for _, c := range apacheCases {
		f.Add([]byte(c.in))
	}
	for _, c := range uwsgiCases {
		f.Add([]byte(c.in))
	}
	for _, c := range systemdCases {
		f.Add([]byte(c.in))
	}
	for _, c := range shellShapeCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, parse := range map[string]func([]byte) ([]Directive, error){
			"nginx": Nginx, "apache": Apache, "uwsgi": UWSGIIni, "systemd": SystemdUnit,
		} {
			if _, err := parse(data); err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Errorf("%s: %v is not a SyntaxError", name, err)
				}
			}
		}
		if _, err := ShellShape(data); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("shell: %v is not a SyntaxError", err)
			}
		}
		if _, err := ShellLanded(data, "x"); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("shell: %v is not a SyntaxError", err)
			}
		}
	})
}
