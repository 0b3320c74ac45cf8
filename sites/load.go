package sites

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Site is a loaded, validated site file.
type Site struct {
	// Name is the site's name: the file name without .yaml.
	Name string
	// File is the path the site was loaded from.
	File string
	// Root is the project root: the folder that holds sites/. Relative
	// paths in the site file are resolved against it.
	Root string
	// Settings are the shared settings of the top level, defaults applied.
	Settings Settings
	// Environments are the site's environments by name.
	Environments map[string]*Environment
}

// Environment is one environment of a site with its settings merged over
// the shared ones.
type Environment struct {
	// Name is the environment's key under environments:.
	Name string
	// Settings are the shared settings with this environment's overrides.
	Settings Settings
	// Hosts are the environment's hosts, each with its own settings.
	Hosts []Host
}

// Host is one machine of an environment.
type Host struct {
	// User is the SSH login user; empty means the SSH default.
	User string
	// Address is the host name or IP address.
	Address string
	// Port is the SSH port; 0 means the SSH default.
	Port int
	// Roles are what the host does (RoleWeb, RoleWorker, RoleDB, RoleLB
	// and the site's own names); web and worker unless the site says.
	Roles []string
	// Settings are the environment's settings with this host's overrides.
	Settings Settings
}

// String returns the host as user@address:port, leaving out what is unset.
func (h Host) String() string {
	s := h.Address
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Port != 0 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}

// EnvironmentNames returns the site's environment names, sorted.
func (s *Site) EnvironmentNames() []string {
	names := make([]string, 0, len(s.Environments))
	for name := range s.Environments {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Environment returns the named environment, or an error that lists the
// environments the site has.
func (s *Site) Environment(name string) (*Environment, error) {
	if env, ok := s.Environments[name]; ok {
		return env, nil
	}
	return nil, fmt.Errorf("%s has no environment %q: use one of %s", s.File, name, strings.Join(s.EnvironmentNames(), ", "))
}

// Path resolves a path from the site file against the project root.
func (s *Site) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Root, p)
}

// Problem is one thing wrong with a site file, at a line.
type Problem struct {
	Line    int
	Message string
}

// Error lists every problem found in one site file.
type Error struct {
	File     string
	Problems []Problem
}

// Error formats the problems one per line as file:line: message.
func (e *Error) Error() string {
	var b strings.Builder
	noun := "problem"
	if len(e.Problems) != 1 {
		noun = "problems"
	}
	fmt.Fprintf(&b, "%s: %d %s", e.File, len(e.Problems), noun)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d: %s", e.File, p.Line, p.Message)
	}
	return b.String()
}

// Load reads and validates one site file. Every problem is reported at
// once in an *Error.
func Load(path string) (*Site, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read site file: %w", err)
	}
	return Parse(path, data)
}

// Parse validates site file contents read from path.
func Parse(path string, data []byte) (*Site, error) {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	root := filepath.Dir(path)
	if filepath.Base(root) == "sites" {
		root = filepath.Dir(root)
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	site := &Site{Name: name, File: path, Root: root, Environments: map[string]*Environment{}}
	v := &validator{}

	if line, col, ok := invalidUTF8(data); ok {
		return nil, &Error{File: path, Problems: []Problem{{line, fmt.Sprintf("byte %d of this line is not UTF-8: save the file as UTF-8", col)}}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: path, Problems: []Problem{{1, "the file is empty: start from sites/example.yaml"}}}
		}
		return nil, &Error{File: path, Problems: []Problem{yamlProblem(err)}}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &Error{File: path, Problems: []Problem{{documentLine(&more), "a second YAML document (after ---): a site file is one document; merge it into the first or move it to a file of its own"}}}
	} else if !errors.Is(err, io.EOF) {
		return nil, &Error{File: path, Problems: []Problem{yamlProblem(err)}}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Problems: []Problem{{top.Line, "a site file is a mapping of keys (project:, url:, …), not " + describe(top)}}}
	}

	// Aliases are counted before anything follows them: a few kilobytes
	// of aliases of aliases expand to more than any machine holds.
	if p := aliasProblem(&doc); p != nil {
		return nil, &Error{File: path, Problems: []Problem{*p}}
	}
	v.checkStructure(top)
	if len(v.problems) > 0 {
		return nil, v.err(path)
	}
	if p := decodeProblem(top); p != nil {
		return nil, &Error{File: path, Problems: []Problem{*p}}
	}

	shared := without(top, "environments")
	if err := shared.Decode(&site.Settings); err != nil {
		return nil, &Error{File: path, Problems: []Problem{{top.Line, err.Error()}}}
	}
	site.Settings.applyDefaults()
	v.checkRelease(site.Settings, shared, site.Root)

	envs := lookup(top, "environments")
	if envs == nil || len(envs.Content) == 0 {
		line := top.Line
		if envs != nil {
			line = envs.Line
		}
		v.add(line, "environments is required: add at least one, e.g. environments: {production: {hosts: [deploy@www.example.com]}}")
		v.checkSettings(site.Settings, shared, "", top.Line)
	} else {
		// Two environments on one host (address and SSH port) that put one
		// instance in two roots would take each other's names there; in
		// one root they are the same site.
		type placement struct{ env, root string }
		placed := map[string]placement{}
		for i := 0; i < len(envs.Content); i += 2 {
			key, val := envs.Content[i], resolve(envs.Content[i+1])
			env := v.environment(key, val, shared)
			site.Environments[env.Name] = env
			for _, h := range env.Hosts {
				where := fmt.Sprintf("%s:%d %s", h.Address, h.Port, h.Settings.Instance)
				if other, ok := placed[where]; ok && other.env != env.Name && other.root != h.Settings.Root {
					v.add(key.Line, "environments.%s: %s and %s both put the instance %s on %s, in %s and %s, where each would take over the other's configurations and services: give this one its own, e.g. instance: %s-%s", env.Name, other.env, env.Name, h.Settings.Instance, h.Address, other.root, h.Settings.Root, h.Settings.Project, env.Name)
					break
				}
				placed[where] = placement{env.Name, h.Settings.Root}
			}
		}
	}
	if len(v.problems) > 0 {
		return nil, v.err(path)
	}
	return site, nil
}

// invalidUTF8 finds the first byte that is not UTF-8: its line and its
// byte position in the line, both from 1.
func invalidUTF8(data []byte) (line, col int, found bool) {
	if utf8.Valid(data) {
		return 0, 0, false
	}
	line, start := 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line, i - start + 1, true
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += size
	}
	return line, 1, true
}

// documentLine is the line where a YAML document's content starts.
func documentLine(doc *yaml.Node) int {
	if len(doc.Content) > 0 {
		return doc.Content[0].Line
	}
	return doc.Line
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// yamlProblem turns a YAML syntax error into a problem at its line.
func yamlProblem(err error) Problem {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			line, _ = strconv.Atoi(m[1])
		}
		msg = msg[len(m[0]):]
	}
	return Problem{Line: line, Message: "not valid YAML: " + msg}
}

// validator collects problems; each is reported once.
type validator struct {
	problems []Problem
	seen     map[Problem]bool
}

func (v *validator) add(line int, format string, args ...any) {
	p := Problem{Line: line, Message: fmt.Sprintf(format, args...)}
	if v.seen == nil {
		v.seen = map[Problem]bool{}
	}
	if v.seen[p] {
		return
	}
	v.seen[p] = true
	v.problems = append(v.problems, p)
}

func (v *validator) err(path string) error {
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
	return &Error{File: path, Problems: v.problems}
}

var envName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// environment merges one environment over the shared settings and
// validates it and its hosts.
func (v *validator) environment(key, val *yaml.Node, shared *yaml.Node) *Environment {
	name := key.Value
	if !envName.MatchString(name) {
		v.add(key.Line, "environment name %q: use lower-case letters, digits, - and _, starting with a letter (it becomes a target argument and a file name)", name)
	}
	env := &Environment{Name: name}
	var overrides *yaml.Node
	if val.Kind == yaml.MappingNode {
		overrides = without(val, "hosts")
	}
	merged := merge(shared, overrides)
	where := fmt.Sprintf("environments.%s", name)
	env.Settings = v.settings(merged, where, key.Line)

	hosts := lookup(val, "hosts")
	locals := 0
	if hosts != nil && hosts.Kind == yaml.SequenceNode {
		for i, h := range hosts.Content {
			h = resolve(h)
			addrNode, hostOverrides := h, (*yaml.Node)(nil)
			if h.Kind == yaml.MappingNode {
				addrNode = lookup(h, "address")
				hostOverrides = without(h, "address", "roles")
				if addrNode == nil {
					v.add(h.Line, "%s.hosts[%d]: address is required (user@host:port)", where, i)
					continue
				}
			}
			host, problem := ParseHost(addrNode.Value)
			if problem != "" {
				v.add(addrNode.Line, "%s.hosts[%d] %q: %s", where, i, addrNode.Value, problem)
				continue
			}
			host.Roles = v.roles(lookup(h, "roles"), fmt.Sprintf("%s.hosts[%d]", where, i))
			if hostOverrides != nil {
				host.Settings = v.settings(merge(merged, hostOverrides), fmt.Sprintf("%s.hosts[%d]", where, i), h.Line)
			} else {
				host.Settings = env.Settings
			}
			if host.Settings.Connection == "local" {
				if !isThisMachine(host.Address) {
					v.add(addrNode.Line, "%s.hosts[%d] %q: connection is local, which works on this machine only; use connection: ssh for a remote host, or write localhost", where, i, addrNode.Value)
					continue
				}
				if locals++; locals > 1 {
					v.add(addrNode.Line, "%s.hosts[%d] %q: a second local host would work on this machine twice; keep one", where, i, addrNode.Value)
					continue
				}
			}
			env.Hosts = append(env.Hosts, host)
		}
	}
	if len(env.Hosts) == 0 && hosts == nil {
		if env.Settings.Connection == "local" {
			env.Hosts = []Host{{Address: "localhost", Settings: env.Settings}}
		} else {
			v.add(key.Line, "%s: hosts is required for connection ssh: add hosts: [deploy@www.example.com:22] (or connection: local)", where)
		}
	} else if len(env.Hosts) == 0 && hosts != nil && len(hosts.Content) == 0 {
		v.add(hosts.Line, "%s.hosts is empty: list at least one host (user@host:port)", where)
	}
	for i := range env.Hosts {
		if len(env.Hosts[i].Roles) == 0 {
			env.Hosts[i].Roles = []string{RoleWeb, RoleWorker}
		}
	}
	line := key.Line
	if hosts != nil {
		line = hosts.Line
	}
	v.fleet(env, val, where, line)
	return env
}

// settings decodes merged settings, applies defaults and validates them.
// where names the environment or host ("" for the top level) in messages;
// line is where a missing required key is reported.
func (v *validator) settings(merged *yaml.Node, where string, line int) Settings {
	var s Settings
	if err := merged.Decode(&s); err != nil {
		// checkStructure has already reported anything Decode can refuse.
		v.add(line, "%s", err)
		return s
	}
	s.applyDefaults()
	v.checkSettings(s, merged, where, line)
	return s
}

// isThisMachine reports whether a host address names this machine.
func isThisMachine(address string) bool {
	return address == "localhost" || address == "127.0.0.1" || address == "::1"
}

// ParseHost parses user@host:port. It returns a problem description
// instead of an error so that callers can place it at a line.
func ParseHost(s string) (Host, string) {
	var h Host
	if s == "" {
		return h, "empty host: write user@host:port"
	}
	rest := s
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		h.User = rest[:at]
		rest = rest[at+1:]
		if !loginName.MatchString(h.User) {
			return h, fmt.Sprintf("user %q is not a valid login name", h.User)
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return h, "missing ] after an IPv6 address"
		}
		h.Address = rest[1:end]
		rest = rest[end+1:]
		if !strings.Contains(h.Address, ":") {
			return h, "brackets are only for IPv6 addresses"
		}
		if !isIPv6(h.Address) {
			return h, fmt.Sprintf("%q is not an IPv6 address", h.Address)
		}
	} else {
		if strings.Count(rest, ":") > 1 {
			return h, "write an IPv6 address in brackets: user@[2001:db8::1]:22"
		}
		h.Address, rest, _ = strings.Cut(rest, ":")
		if rest != "" || strings.HasSuffix(s, ":") {
			rest = ":" + rest
		}
		if !isHostName(h.Address) && !isIPv4(h.Address) {
			return h, fmt.Sprintf("%q is not a host name or IP address", h.Address)
		}
	}
	if rest != "" {
		if !strings.HasPrefix(rest, ":") {
			return h, fmt.Sprintf("unexpected %q after the host", rest)
		}
		port, err := strconv.Atoi(rest[1:])
		if err != nil || port < 1 || port > 65535 {
			return h, fmt.Sprintf("port %q must be a number from 1 to 65535", rest[1:])
		}
		h.Port = port
	}
	return h, ""
}
