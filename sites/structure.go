package sites

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// field is one key a mapping accepts.
type field struct {
	key string
	typ reflect.Type
}

// fieldsOf lists the YAML keys of a struct type, inline structs included.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			out = append(out, fieldsOf(f.Type)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out = append(out, field{key: name, typ: f.Type})
	}
	return out
}

// KeyPaths lists every key a site file accepts, as dotted paths
// (django.settings_module), in schema order. Environment and host entries
// accept the same keys under environments.NAME and its hosts.
func KeyPaths() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for _, f := range fieldsOf(t) {
			p := prefix + f.key
			out = append(out, p)
			if f.typ.Kind() == reflect.Struct {
				walk(p+".", f.typ)
			}
			if f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.Struct {
				walk(p+"[].", f.typ.Elem())
			}
		}
	}
	walk("", reflect.TypeOf(Settings{}))
	out = append(out, "environments", "environments.NAME.hosts", "environments.NAME.hosts[].address", "environments.NAME.hosts[].roles")
	return out
}

var (
	settingsType    = reflect.TypeOf(Settings{})
	fileType        = reflect.TypeOf(file{})
	environmentType = reflect.TypeOf(environmentFile{})
	hostType        = reflect.TypeOf(hostEntry{})
)

// checkStructure reports unknown keys and values of the wrong shape or
// type anywhere in the file, before any value is decoded.
func (v *validator) checkStructure(top *yaml.Node) {
	v.check(top, fileType, "")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (v *validator) check(n *yaml.Node, t reflect.Type, path string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if t == hostType && n.Kind == yaml.ScalarNode {
		return // "user@host:port"; its syntax is checked with the environment
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			v.add(n.Line, "%s must be a mapping of keys, not %s", path, describe(n))
			return
		}
		fields := fieldsOf(t)
		v.noDuplicates(n, path)
		for i := 0; i < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			f, ok := find(fields, k.Value)
			if !ok {
				v.add(k.Line, "%s", unknownKey(k.Value, path, fields))
				continue
			}
			if (t == environmentType || t == hostType) && releaseKeys[k.Value] {
				v.add(k.Line, "%s cannot be set in %s: the release is built once for every environment; set it at the top level", k.Value, path)
				continue
			}
			if t == hostType && environmentKeys[k.Value] {
				v.add(k.Line, "%s cannot be set in %s: it applies to every host of the environment; set it under the environment", k.Value, path)
				continue
			}
			v.check(val, f.typ, join(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			v.add(n.Line, "%s must be a mapping of keys, not %s", path, describe(n))
			return
		}
		v.noDuplicates(n, path)
		for i := 0; i < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				v.add(k.Line, "%s: keys must be plain names", path)
				continue
			}
			v.check(val, t.Elem(), join(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			v.add(n.Line, "%s must be a list, not %s (write [a, b] or one \"- item\" per line)", path, describe(n))
			return
		}
		for i, item := range n.Content {
			v.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			v.add(n.Line, "%s must be a text value, not %s", path, describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			v.add(n.Line, "%s must be a whole number, not %s", path, describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			v.add(n.Line, "%s must be true or false, not %s", path, describe(n))
		}
	}
}

// noDuplicates reports a key written twice in one mapping: YAML parsers
// quietly keep the last one, which hides mistakes.
func (v *validator) noDuplicates(n *yaml.Node, path string) {
	first := map[string]int{}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if line, ok := first[k.Value]; ok {
			v.add(k.Line, "%q is written twice in %s (first at line %d): keep one", k.Value, orTop(path), line)
			continue
		}
		first[k.Value] = k.Line
	}
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func find(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// roleNames maps the Ansible role's variable names to their keys here, so
// that people migrating get a precise hint.
var roleNames = map[string]string{
	"websiteproject":                                        "project",
	"django_deployment_root_folder":                         "root",
	"django_source_folder":                                  "django.source_folder",
	"django_archives_to_deflate":                            "django.archives_to_deflate",
	"django_dependencies":                                   "django.dependencies",
	"django_pip_install_requirements":                       "django.pip_install_requirements",
	"django_settings_folder":                                "django.settings_folder",
	"django_settings_file":                                  "django.settings_module",
	"django_webapplication_additional_environment_settings": "django.environment",
	"django_environment_variables":                          "secrets.keys",
	"django_revision_file_pattern":                          "revision_pattern",
	"application_additional_packages":                       "packages",
	"site_certificate":                                      "tls.certificate",
	"site_key":                                              "tls.key_secret",
	"uwsgi_number_workers":                                  "app.workers",
	"uwsgi_user":                                            "app.user",
	"uwsgi_group":                                           "app.group",
	"uwsgi_additional_options":                              "app.uwsgi_options",
	"nginx_binary_name":                                     "web.check_command",
	"apache2_check_binary_name":                             "web.check_command",
	"nginx_user":                                            "web.user",
	"nginx_group":                                           "web.group",
	"apache2_user":                                          "web.user",
	"apache2_group":                                         "web.group",
	"site_proxy":                                            "proxy",
}

// unknownKey words the message for a key the mapping at path does not
// accept, with the nearest valid key.
func unknownKey(key, path string, fields []field) string {
	where := ""
	if path != "" {
		where = " in " + path
	}
	if to, ok := roleNames[key]; ok && path == "" {
		return fmt.Sprintf("unknown key %q: that is the Ansible role's name; djship calls it %q", key, to)
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	if best := nearest(key, keys); best != "" {
		return fmt.Sprintf("unknown key %q%s; did you mean %q?", key, where, best)
	}
	sort.Strings(keys)
	return fmt.Sprintf("unknown key %q%s; valid keys are %s", key, where, strings.Join(keys, ", "))
}

// nearest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a likely typo.
func nearest(s string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := distance(strings.ToLower(s), c)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(2, len(s)/3)
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("the text %q", n.Value)
}

// resolve follows YAML aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// lookupPath returns the node at a dotted path (django.settings_module),
// or nil.
func lookupPath(n *yaml.Node, path string) *yaml.Node {
	for _, key := range strings.Split(path, ".") {
		n = lookup(n, key)
		if n == nil {
			return nil
		}
	}
	return n
}

// without returns a shallow copy of mapping n without the given keys.
func without(n *yaml.Node, keys ...string) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i < len(n.Content); i += 2 {
		skip := false
		for _, k := range keys {
			if n.Content[i].Value == k {
				skip = true
			}
		}
		if !skip {
			out.Content = append(out.Content, n.Content[i], n.Content[i+1])
		}
	}
	return out
}

// merge returns base with over laid on top: mappings merge key by key,
// anything else in over replaces what base has. Neither input changes.
func merge(base, over *yaml.Node) *yaml.Node {
	base, over = resolve(base), resolve(over)
	if over == nil || isNull(over) {
		return base
	}
	if base == nil || base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: base.Line, Column: base.Column}
	out.Content = append(out.Content, base.Content...)
	for i := 0; i < len(over.Content); i += 2 {
		k, val := over.Content[i], over.Content[i+1]
		replaced := false
		for j := 0; j < len(out.Content); j += 2 {
			if out.Content[j].Value == k.Value {
				out.Content[j] = k
				out.Content[j+1] = merge(out.Content[j+1], val)
				replaced = true
				break
			}
		}
		if !replaced {
			out.Content = append(out.Content, k, val)
		}
	}
	return out
}
