package app

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/autoscale"
)

// autoscaler hands the alerts of ActionGroups with autoscale: true to the
// autoscale manager.
type autoscaler struct{ m *autoscale.Manager }

func (a autoscaler) Autoscale(ctx context.Context, q *actions.ActionRequest) (string, error) {
	res, err := a.m.Trigger(ctx, autoscale.Trigger{
		Key: q.Key, AlertConfig: q.Config, ObjType: q.ObjType, ObjName: q.Notice.Alert.ObjName,
		Resolve: q.Resolve, Reason: q.Notice.Summary, ServersUp: serversUp(q.Notice.Alert),
	})
	if errors.Is(err, autoscale.ErrConfig) {
		return "", &actions.Failure{Err: err, Permanent: true}
	}
	if err != nil {
		return "", err
	}
	return res.String(), nil
}

// serversUp is servers_up of the alert's latest POOL_METRICS, or -1.
func serversUp(a actions.AviAlert) int {
	for i := len(a.Events) - 1; i >= 0; i-- {
		raw, ok := a.Events[i].EventDetails["pool_metrics_details"]
		if !ok {
			continue
		}
		var d struct {
			ServersUp *int `json:"servers_up"`
		}
		if json.Unmarshal(raw, &d) == nil && d.ServersUp != nil {
			return *d.ServersUp
		}
	}
	return -1
}
