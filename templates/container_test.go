package templates

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzCompose renders compose files with arbitrary values: each must
// parse back as one web service whose values are the ones given, with
// every $ doubled, so that no value becomes YAML structure or a Compose
// variable.
func FuzzCompose(f *testing.F) {
	f.Add("127.0.0.1:5000/shop:v1", "SECRET", "x\nservices:\n  evil: {image: x}", "$HOME", "/srv/a:/srv/a")
	f.Add("i", "K", "${VAR}", "a: b", "/x:/y:ro")
	f.Fuzz(func(t *testing.T, image, key, value, label, volume string) {
		p := ComposeProject{Project: "shop", Release: "v1", Revision: "v1", Image: image, User: "1000:33",
			Environment: map[string]string{key: value}, Labels: map[string]string{"team": label}, Volumes: []string{volume},
			StopGracePeriod: 30, WorkingDir: "/app/src", Services: []ComposeService{{Name: "web", Command: []string{"gunicorn", value}}}}
		data, err := Compose(p)
		if err != nil {
			return // refused
		}
		var parsed struct {
			Services map[string]struct {
				Image       string            `yaml:"image"`
				Command     []string          `yaml:"command"`
				Environment map[string]string `yaml:"environment"`
				Labels      map[string]string `yaml:"labels"`
				Volumes     []string          `yaml:"volumes"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(data, &parsed); err != nil {
			t.Fatalf("the compose file does not parse: %v\n%s", err, data)
		}
		if len(parsed.Services) != 1 {
			t.Fatalf("%d services, want 1:\n%s", len(parsed.Services), data)
		}
		web := parsed.Services["web"]
		esc := func(s string) string { return strings.ReplaceAll(s, "$", "$$") }
		if web.Image != esc(image) || web.Environment[esc(key)] != esc(value) || web.Labels["team"] != esc(label) ||
			len(web.Command) != 2 || web.Command[1] != esc(value) || len(web.Volumes) != 1 || web.Volumes[0] != esc(volume) {
			t.Fatalf("values changed on the way:\n%s", data)
		}
	})
}

// TestDockerfileRefusesWhatIsNotAnImage keeps FROM to an image reference.
func TestDockerfileRefusesWhatIsNotAnImage(t *testing.T) {
	for _, base := range []string{"python:3.11\nRUN rm -rf /", "python:3.11 AS x", "", "Python", "python:3.11\r"} {
		if _, err := Dockerfile(ImageBuild{Base: base, Project: "shop", Revision: "v1", SourceFolder: "."}); err == nil {
			t.Errorf("FROM %q was written", base)
		}
	}
	out, err := Dockerfile(ImageBuild{Base: "registry.example.com:5000/base/python:3.11-slim", Project: "shop", Revision: "v1", SourceFolder: "site", VenvArgs: []string{"k", "x\ny"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM registry.example.com:5000/base/python:3.11-slim\n", "WORKDIR /app/src/site\n", `"x\ny"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the Dockerfile lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(string(out), "\n") != 10 {
		t.Errorf("a value added lines to the Dockerfile:\n%s", out)
	}
}

// TestComposeDatabaseFile checks the database service: the password only
// as a mounted file, the data in the named volume, the port on loopback;
// values that would change the file's structure are refused.
func TestComposeDatabaseFile(t *testing.T) {
	db := ComposeDatabase{Project: "shop", Image: "postgres:15-bookworm", User: "shop", Name: "shop$db",
		PasswordFile: "/srv/www/shop/database/password", Volume: "pgdata", Port: 5433}
	data, err := ComposeDatabaseFile(db)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &parsed); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	pg := parsed.Services["postgres"]
	if pg.Environment["POSTGRES_DB"] != "shop$$db" || pg.Environment["POSTGRES_PASSWORD_FILE"] == "" || len(pg.Ports) != 1 || pg.Ports[0] != "127.0.0.1:5433:5432" {
		t.Errorf("database service:\n%s", data)
	}
	if _, ok := parsed.Volumes["pgdata"]; !ok || pg.Volumes[0] != "pgdata:/var/lib/postgresql/data" {
		t.Errorf("no named volume:\n%s", data)
	}
	for _, bad := range []ComposeDatabase{
		{Project: "shop", Image: "postgres:15\nx", User: "u", Name: "n", PasswordFile: "/p", Volume: "v"},
		{Project: "shop", Image: "postgres", User: "u", Name: "n", PasswordFile: "/p:/etc/passwd", Volume: "v"},
		{Project: "shop", Image: "postgres", User: "u", Name: "n", PasswordFile: "/p", Volume: "v:/x"},
	} {
		if _, err := ComposeDatabaseFile(bad); err == nil {
			t.Errorf("%+v was rendered", bad)
		}
	}
}

// FuzzComposeServices renders the site's own services with arbitrary
// values: each must parse back as the one service given, its values
// unchanged but for $ doubled.
func FuzzComposeServices(f *testing.F) {
	f.Add("redis:7", "--port\n6380", "A", "${B}", "data:/data")
	f.Fuzz(func(t *testing.T, image, arg, key, value, volume string) {
		data, err := ComposeServicesFile("shop", []ComposeExtra{{Name: "cache", Image: image, Command: []string{"redis-server", arg},
			Environment: map[string]string{key: value}, Volumes: []string{volume}}})
		if err != nil {
			return
		}
		var parsed struct {
			Services map[string]struct {
				Command     []string          `yaml:"command"`
				Environment map[string]string `yaml:"environment"`
				Volumes     []string          `yaml:"volumes"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(data, &parsed); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		esc := func(s string) string { return strings.ReplaceAll(s, "$", "$$") }
		c := parsed.Services["cache"]
		if len(parsed.Services) != 1 || len(c.Command) != 2 || c.Command[1] != esc(arg) || c.Environment[esc(key)] != esc(value) || c.Volumes[0] != esc(volume) {
			t.Fatalf("values changed on the way:\n%s", data)
		}
	})
}

// TestDockerfileBuildsTheVirtualenvFirst checks the layer order when the
// virtualenv reads only its inputs: those are copied, the virtualenv is
// built, and only then the rest of the source is copied; inputs that
// would leave the source are refused.
func TestDockerfileBuildsTheVirtualenvFirst(t *testing.T) {
	b := ImageBuild{Base: "python:3.11", Project: "shop", Revision: "v1", SourceFolder: "site", VenvArgs: []string{"image"},
		VenvFirst: true, VenvInputs: []string{"requirements.txt", "site/wheels/"}}
	out, err := Dockerfile(b)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "COPY") || strings.HasPrefix(l, "RUN") || strings.HasPrefix(l, "WORKDIR") {
			order = append(order, l)
		}
	}
	want := []string{
		`COPY ["djship/","/usr/local/lib/djship/"]`,
		`COPY ["src/requirements.txt","/app/src/requirements.txt"]`,
		`COPY ["src/site/wheels/","/app/src/site/wheels/"]`,
		`WORKDIR /app/src/site`,
		`RUN ["sh","/usr/local/lib/djship/venv.sh","/app/venv","python3","image"]`,
		`COPY ["src/","/app/src/"]`,
	}
	if len(order) < len(want) || strings.Join(order[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("the Dockerfile's first instructions:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	for _, in := range []string{"../secrets", "/etc/passwd", "a b", "x\nRUN id", "$HOME", ".", ""} {
		b.VenvInputs = []string{in}
		if _, err := Dockerfile(b); err == nil {
			t.Errorf("virtualenv input %q was written", in)
		}
	}
}
