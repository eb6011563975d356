package cli

import (
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
)

func TestIntegrationsListShowPrint(t *testing.T) {
	isolate(t)
	r := vigil(t, "", "integrations", "list")
	wantCode(t, r, 0)
	for _, name := range []string{"vcenter-scale-out", "vcenter-scale-in", "slack", "teams", "pagerduty", "servicenow", "webhook"} {
		if !strings.Contains(r.stdout, "\n"+name+" ") {
			t.Errorf("list lacks %s:\n%s", name, r.stdout)
		}
	}
	r = vigil(t, "", "integrations", "show", "pagerduty")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "# pagerduty") || !strings.Contains(r.stdout, "pagerduty_routing_key") {
		t.Errorf("show:\n%.300s", r.stdout)
	}
	r = vigil(t, "", "integrations", "show", "nope")
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, `no such integration: "nope" (bundled: pagerduty, servicenow, slack,`) {
		t.Errorf("show nope: %s", r.stderr)
	}

	// -o yaml prints what install would create, without a server.
	r = vigil(t, "", "integrations", "install", "vcenter-scale-out", "--set", "VCENTER_TEMPLATE=tpl", "--set", "SERVER_PORT=8080", "-o", "yaml")
	wantCode(t, r, 0)
	objs, err := config.ParseObjects(strings.NewReader(r.stdout), "out.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Kind+"/"+o.Name)
	}
	if strings.Join(kinds, " ") != "ControlScript/vcenter-scale-out ActionGroup/vcenter-scale-out AlertConfig/vcenter-scale-out" {
		t.Fatalf("objects %v", kinds)
	}
	if !strings.Contains(string(objs[0].Spec), `"VCENTER_TEMPLATE":"tpl"`) || !strings.Contains(string(objs[0].Spec), `"SERVER_PORT":"8080"`) {
		t.Fatalf("ControlScript spec %s", objs[0].Spec)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install", "vcenter-scale-out", "-o", "yaml"}, "needs these parameters:\nvigil:   --set VCENTER_TEMPLATE=..."},
		{[]string{"install", "slack", "--set", "SLACK_CHANEL=x", "-o", "yaml"}, "integration slack has no parameter SLACK_CHANEL (it has: "},
		{[]string{"install", "slack", "--set", "novalue"}, `--set "novalue": want PARAM=VALUE`},
		{[]string{"install"}, "want 1 argument(s), NAME"},
	} {
		r := vigil(t, "", append([]string{"integrations"}, tc.args...)...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, r.stderr, tc.want)
		}
	}
}
