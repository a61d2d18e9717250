package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/deploy/promtest"
)

var chartDir = filepath.Join("helm", "edgevitals")

// kubeVersion is the Kubernetes version charts are rendered for: a helm built with `go
// install` assumes 1.20, older than the chart's kubeVersion.
const kubeVersion = "1.30.0"

// TestHelmChartCopies: a chart can only read files inside its directory, so it carries
// copies of the rules and the dashboard; they must be the files of deploy/, byte for byte.
// Fix a failure with: cp prometheus/edgevitals.rules.yml grafana/edgevitals.json helm/edgevitals/files/
func TestHelmChartCopies(t *testing.T) {
	t.Parallel()
	for _, src := range []string{rulesFile, dashboardFile} {
		cp := filepath.Join(chartDir, "files", filepath.Base(src))
		if a, b := read(t, src), read(t, cp); a != b {
			t.Errorf("%s differs from %s: copy it again (cp %s %s)", cp, src, src, cp)
		}
	}
}

// helm returns the path of the helm binary: skipped loudly when missing, a failure under
// CI (test.sh installs it with go install into GOPATH/bin).
func helm(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("helm")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("helm is required in CI and was not found: %v (test.sh installs it: go install helm.sh/helm/v3/cmd/helm)", err)
	}
	t.Skipf("!!! SKIPPED: helm not found (%v): the chart is not linted or rendered. "+
		"./test.sh installs it into $(go env GOPATH)/bin. With CI=true this is a failure.", err)
	return ""
}

func runHelm(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No repositories, plugins or caches of the machine's user.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// manifests splits helm template output into documents by "Kind/name".
func manifests(t *testing.T, out string) map[string]string {
	t.Helper()
	kindRe := regexp.MustCompile(`(?m)^kind: (\S+)$`)
	nameRe := regexp.MustCompile(`(?m)^metadata:\n(?:  .*\n)*?  name: (\S+)$`)
	docs := map[string]string{}
	for _, d := range strings.Split(out, "\n---\n") {
		if strings.TrimSpace(strings.Trim(d, "-")) == "" {
			continue
		}
		k, n := kindRe.FindStringSubmatch(d), nameRe.FindStringSubmatch(d)
		if k == nil || n == nil {
			t.Fatalf("a rendered document without kind or metadata.name:\n%s", d)
		}
		docs[k[1]+"/"+n[1]] = d
	}
	return docs
}

// block returns the lines under the line `key: |` (or `key:`) of doc that are indented by
// at least indent spaces, or empty, with that indent removed: a literal block or a mapping
// as the chart wrote it.
func block(t *testing.T, doc, key string, indent int) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	prefix := strings.Repeat(" ", indent-2) + key + ":"
	for i, l := range lines {
		if l != prefix && l != prefix+" |" {
			continue
		}
		var out []string
		for _, b := range lines[i+1:] {
			if strings.TrimSpace(b) != "" && !strings.HasPrefix(b, strings.Repeat(" ", indent)) {
				break
			}
			out = append(out, strings.TrimPrefix(b, strings.Repeat(" ", indent)))
		}
		return strings.TrimRight(strings.Join(out, "\n"), " \n") + "\n"
	}
	t.Fatalf("no %q at indent %d in:\n%s", key, indent-2, doc)
	return ""
}

func wantIn(t *testing.T, what, doc string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(doc, w) {
			t.Errorf("%s has no %q", what, w)
		}
	}
}

func TestHelmLint(t *testing.T) {
	t.Parallel()
	bin := helm(t)
	runHelm(t, bin, "lint", "--strict", "--kube-version", kubeVersion, chartDir)
	runHelm(t, bin, "lint", "--strict", "--kube-version", kubeVersion, chartDir,
		"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true,persistence.enabled=true")
}

// TestHelmTemplate renders the chart as an install with everything on, and holds what it
// makes to what edgevitals needs: the config loads with edgevitals' own loader, the
// probes ask the admin port, Chromium gets memory-backed /tmp and /dev/shm, the pod is
// not root, and the PrometheusRule and dashboard are the files of deploy/.
func TestHelmTemplate(t *testing.T) {
	t.Parallel()
	bin := helm(t)
	out := runHelm(t, bin, "template", "web", chartDir, "--namespace", "sites", "--kube-version", kubeVersion,
		"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true")
	docs := manifests(t, out)
	get := func(key string) string {
		t.Helper()
		d, ok := docs[key]
		if !ok {
			keys := make([]string, 0, len(docs))
			for k := range docs {
				keys = append(keys, k)
			}
			t.Fatalf("no %s rendered; have %q", key, keys)
		}
		return d
	}

	// The config: edgevitals loads it, its admin listener is where the probes and the
	// ServiceMonitor go, and its data_dir is the mounted volume.
	cm := get("ConfigMap/web-edgevitals")
	toml := filepath.Join(t.TempDir(), "edgevitals.toml")
	if err := os.WriteFile(toml, []byte(block(t, cm, "edgevitals.toml", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(toml)
	if err != nil {
		t.Fatalf("the chart's default config does not load: %v", err)
	}
	if c.AdminOnLoopback() || !strings.HasSuffix(c.Server.AdminListen, ":9145") || c.DataDir != "/var/lib/edgevitals" {
		t.Errorf("config: admin_listen %q (loopback %v), data_dir %q; want 0.0.0.0:9145 and /var/lib/edgevitals",
			c.Server.AdminListen, c.AdminOnLoopback(), c.DataDir)
	}

	dep := get("Deployment/web-edgevitals")
	stages, err := parseDockerfile(read(t, dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	ins, _, err := chain(stages, "full")
	if err != nil {
		t.Fatal(err)
	}
	user, _ := last(ins, "USER")
	uid, _, _ := strings.Cut(user.args, ":")
	wantIn(t, "Deployment", dep,
		`args: ["serve", "-config", "/etc/edgevitals/edgevitals.toml"]`,
		"name: admin\n              containerPort: 9145",
		"name: http\n              containerPort: 8080",
		"livenessProbe:\n            failureThreshold: 3\n            httpGet:\n              path: /healthz\n              port: admin",
		"readinessProbe:\n            failureThreshold: 2\n            httpGet:\n              path: /readyz\n              port: admin",
		"- name: EDGEVITALS_ADMIN_TOKEN\n              valueFrom:\n                secretKeyRef:\n                  name: web-edgevitals-admin-token\n                  key: admin-token",
		"mountPath: /dev/shm", "name: dshm\n          emptyDir:\n            medium: Memory",
		"mountPath: /tmp", "name: tmp\n          emptyDir:\n            medium: Memory",
		"mountPath: /var/lib/edgevitals",
		"runAsNonRoot: true", "runAsUser: "+uid, // the Dockerfile's user
		"allowPrivilegeEscalation: false", "readOnlyRootFilesystem: true", "drop:\n              - ALL",
		"checksum/config: ",
	)
	wantIn(t, "Secret", get("Secret/web-edgevitals-admin-token"), "admin-token: ")
	wantIn(t, "Service", get("Service/web-edgevitals"), "name: http\n      port: 80\n      targetPort: http", "name: admin\n      port: 9145\n      targetPort: admin")
	wantIn(t, "ServiceMonitor", get("ServiceMonitor/web-edgevitals"),
		"apiVersion: monitoring.coreos.com/v1", "- port: admin\n      path: /metrics",
		"matchLabels:\n      app.kubernetes.io/name: edgevitals\n      app.kubernetes.io/instance: web")

	// The PrometheusRule's spec is the rules file, and promtool accepts it as one.
	pr := get("PrometheusRule/web-edgevitals")
	wantIn(t, "PrometheusRule", pr, "apiVersion: monitoring.coreos.com/v1")
	spec := block(t, pr, "spec", 2)
	if want := strings.TrimRight(read(t, rulesFile), "\n") + "\n"; spec != want {
		t.Errorf("the PrometheusRule's spec is not %s as it is", rulesFile)
	}
	checkRules(t, spec)

	dash := get("ConfigMap/web-edgevitals-dashboard")
	wantIn(t, "dashboard ConfigMap", dash, `grafana_dashboard: "1"`)
	if got, want := block(t, dash, "edgevitals.json", 4), strings.TrimRight(read(t, dashboardFile), "\n")+"\n"; got != want {
		t.Errorf("the dashboard ConfigMap's edgevitals.json is not %s as it is", dashboardFile)
	}
}

// checkRules runs promtool check rules on text.
func checkRules(t *testing.T, text string) {
	t.Helper()
	promtool := promtest.Binary(t, "promtool")
	path := filepath.Join(t.TempDir(), "rendered.rules.yml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the rendered PrometheusRule: %v\n%s", err, out)
	}
}

// TestHelmTemplateValues: the switches do what values.yaml says.
func TestHelmTemplateValues(t *testing.T) {
	t.Parallel()
	bin := helm(t)
	render := func(set string) map[string]string {
		t.Helper()
		args := []string{"template", "web", chartDir, "--kube-version", kubeVersion}
		if set != "" {
			args = append(args, "--set", set)
		}
		return manifests(t, runHelm(t, bin, args...))
	}
	kinds := func(docs map[string]string) string {
		var ks []string
		for k := range docs {
			ks = append(ks, k)
		}
		return fmt.Sprint(ks)
	}

	// Defaults: no Prometheus Operator or Grafana objects, an emptyDir store, a token.
	docs := render("")
	for _, k := range []string{"ServiceMonitor/web-edgevitals", "PrometheusRule/web-edgevitals", "ConfigMap/web-edgevitals-dashboard", "PersistentVolumeClaim/web-edgevitals"} {
		if _, ok := docs[k]; ok {
			t.Errorf("defaults render %s", k)
		}
	}
	if _, ok := docs["Secret/web-edgevitals-admin-token"]; !ok {
		t.Errorf("defaults render no token Secret: %s", kinds(docs))
	}

	// A Secret of one's own: none made, the pod reads that one.
	docs = render("adminToken.existingSecret=edge-token,adminToken.existingSecretKey=token")
	if _, ok := docs["Secret/web-edgevitals-admin-token"]; ok {
		t.Error("with adminToken.existingSecret the chart still makes a Secret")
	}
	wantIn(t, "Deployment with existingSecret", docs["Deployment/web-edgevitals"], "name: edge-token\n                  key: token")

	// A given token is the one in the Secret.
	docs = render("adminToken.value=s3cret")
	wantIn(t, "Secret with adminToken.value", docs["Secret/web-edgevitals-admin-token"], `admin-token: "czNjcmV0"`)

	// Persistence: a claim, and one pod at a time on it.
	docs = render("persistence.enabled=true")
	wantIn(t, "PVC", docs["PersistentVolumeClaim/web-edgevitals"], "storage: 1Gi")
	wantIn(t, "Deployment with persistence", docs["Deployment/web-edgevitals"], "type: Recreate", "claimName: web-edgevitals")

	// Runbooks elsewhere: every runbook_url moves, the rules stay valid.
	docs = render("prometheusRule.enabled=true,prometheusRule.runbookBaseURL=https://wiki.example.com/edge/runbooks/")
	spec := block(t, docs["PrometheusRule/web-edgevitals"], "spec", 2)
	if strings.Contains(spec, runbookBase) || strings.Count(spec, "runbook_url: 'https://wiki.example.com/edge/runbooks#") != len(alerts) {
		t.Errorf("with runbookBaseURL the rules still point at %s, or not every alert moved", runbookBase)
	}
	checkRules(t, spec)
}
