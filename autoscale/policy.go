package autoscale

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/config"
)

// KindAutoscalePolicy is the kind of a Policy.
const KindAutoscalePolicy = "AutoscalePolicy"

// Defaults and bounds of a policy (Avi's).
const (
	DefaultCooldown         = 300 * time.Second
	DefaultStep             = 1
	DefaultOperationTimeout = 30 * time.Minute
	MaxSize                 = 400
)

// Policy is an AutoscalePolicy: when and by how much a pool that names it
// grows and shrinks. Field names follow Avi's ServerAutoScalePolicy.
type Policy struct {
	// MinSize and MaxSize bound the pool's servers (0 to 400).
	MinSize int `json:"min_size"`
	MaxSize int `json:"max_size"`
	// ScaleoutAlertConfigs and ScaleinAlertConfigs name the AlertConfigs
	// whose alerts ask for a scale-out or a scale-in.
	ScaleoutAlertConfigs []string `json:"scaleout_alertconfigs,omitempty"`
	ScaleinAlertConfigs  []string `json:"scalein_alertconfigs,omitempty"`
	// ScaleoutCooldown and ScaleinCooldown are the least time between two
	// scale-outs, and between two scale-ins; default 300s each.
	ScaleoutCooldown *config.Duration `json:"scaleout_cooldown,omitempty"`
	ScaleinCooldown  *config.Duration `json:"scalein_cooldown,omitempty"`
	// MaxScaleoutStep and MaxScaleinStep bound the servers added or removed
	// by one decision; default 1.
	MaxScaleoutStep int `json:"max_scaleout_step,omitempty"`
	MaxScaleinStep  int `json:"max_scalein_step,omitempty"`
	// OperationTimeout is how long a decision counts as in flight when its
	// script reports neither _COMPLETE nor _FAILED; default 30m.
	OperationTimeout config.Duration `json:"operation_timeout,omitempty"`
}

// Cooldowns returns the scale-out and scale-in cooldowns, defaults applied.
func (p *Policy) Cooldowns() (out, in time.Duration) {
	out, in = DefaultCooldown, DefaultCooldown
	if p.ScaleoutCooldown != nil {
		out = p.ScaleoutCooldown.D()
	}
	if p.ScaleinCooldown != nil {
		in = p.ScaleinCooldown.D()
	}
	return out, in
}

// Steps returns the largest scale-out and scale-in, defaults applied.
func (p *Policy) Steps() (out, in int) {
	out, in = p.MaxScaleoutStep, p.MaxScaleinStep
	if out == 0 {
		out = DefaultStep
	}
	if in == 0 {
		in = DefaultStep
	}
	return out, in
}

// Timeout returns the operation timeout, default applied.
func (p *Policy) Timeout() time.Duration {
	if p.OperationTimeout == 0 {
		return DefaultOperationTimeout
	}
	return p.OperationTimeout.D()
}

// Direction returns Out or In for an AlertConfig the policy lists, or ""
// when it lists it in neither.
func (p *Policy) Direction(alertConfig string) string {
	for _, n := range p.ScaleoutAlertConfigs {
		if n == alertConfig {
			return Out
		}
	}
	for _, n := range p.ScaleinAlertConfigs {
		if n == alertConfig {
			return In
		}
	}
	return ""
}

// ParsePolicy decodes and checks an AutoscalePolicy spec.
func ParsePolicy(raw json.RawMessage) (*Policy, error) {
	var p Policy
	if err := config.DecodeSpec(raw, &p); err != nil {
		return nil, err
	}
	return &p, p.validate()
}

func (p *Policy) validate() error {
	switch {
	case p.MinSize < 0 || p.MinSize > MaxSize:
		return config.Errorf("spec.min_size", "must be 0 to %d, got %d", MaxSize, p.MinSize)
	case p.MaxSize < 1 || p.MaxSize > MaxSize:
		return config.Errorf("spec.max_size", "must be 1 to %d, got %d", MaxSize, p.MaxSize)
	case p.MinSize > p.MaxSize:
		return config.Errorf("spec.min_size", "%d is above max_size %d", p.MinSize, p.MaxSize)
	case p.MaxScaleoutStep < 0 || p.MaxScaleoutStep > MaxSize:
		return config.Errorf("spec.max_scaleout_step", "must be 1 to %d, got %d", MaxSize, p.MaxScaleoutStep)
	case p.MaxScaleinStep < 0 || p.MaxScaleinStep > MaxSize:
		return config.Errorf("spec.max_scalein_step", "must be 1 to %d, got %d", MaxSize, p.MaxScaleinStep)
	case len(p.ScaleoutAlertConfigs) == 0 && len(p.ScaleinAlertConfigs) == 0:
		return config.Errorf("spec", "names no AlertConfig: set scaleout_alertconfigs, scalein_alertconfigs or both")
	}
	seen := map[string]string{}
	for _, l := range []struct {
		field string
		names []string
	}{{"scaleout_alertconfigs", p.ScaleoutAlertConfigs}, {"scalein_alertconfigs", p.ScaleinAlertConfigs}} {
		for i, n := range l.names {
			field := fmt.Sprintf("spec.%s[%d]", l.field, i)
			if n == "" {
				return config.Errorf(field, "is empty")
			}
			if prev, ok := seen[n]; ok {
				return config.Errorf(field, "AlertConfig %q is already listed as %s", n, prev)
			}
			seen[n] = field
		}
	}
	return nil
}

func init() {
	config.Register(config.Kind{
		Name:        KindAutoscalePolicy,
		Description: "when a pool that names it scales out and in: the alert configs that ask, min and max size, cooldowns and steps",
		Validate: func(spec json.RawMessage) error {
			_, err := ParsePolicy(spec)
			return err
		},
	})
}
