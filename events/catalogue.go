package events

import (
	"fmt"
	"slices"
	"strings"
)

// Modules of the events vigil defines itself. Avi's own module names
// (SE_HM, CONFIG, AUTOSCALE_MGR, ...) are used for the events Avi has.
const (
	// ModuleCustom is the module of an event id that is not in the
	// catalogue: ids published by DataScripts, receivers and scripts.
	ModuleCustom = "CUSTOM"
	// ModuleRunner is the module of the ControlScript runner's events.
	ModuleRunner = "VIGIL_RUNNER"
	// ModuleDataPlane is the module of the proxy's own events.
	ModuleDataPlane = "VIGIL_DATAPLANE"
	// ModuleSources is the module of the event sources' events (webhook
	// receivers, schedules).
	ModuleSources = "VIGIL_SOURCES"
)

// Info describes one event id of the catalogue.
type Info struct {
	// ID is the event id, e.g. "SERVER_DOWN"; it is also the CloudEvents type.
	ID string
	// Module is the Avi module that reports the event.
	Module string
	// DetailsKey is the one key under which event_details holds the
	// details, e.g. "se_hm_pool_details"; empty when the event has none.
	DetailsKey string
	// Description is one line in Avi's style; <name> marks a value taken
	// from the details.
	Description string
}

// catalogue lists the event ids vigil knows. Modules and details keys follow
// Avi's EventLog schema (vmware/alb-sdk EventLog and EventDetails). Where
// Avi's schema does not say which module reports an event, the choice is
// marked "module inferred".
var catalogue = []Info{
	// Health monitoring. Module inferred: Avi's Module enum has no
	// HEALTH_MONITOR; SE_HM matches the se_hm_* details these events carry.
	{"SERVER_DOWN", "SE_HM", "se_hm_pool_details", "Server <hostname> (<addr>:<port>) in Pool <pool> is DOWN due to health monitor <health_monitor> failure"},
	{"SERVER_UP", "SE_HM", "se_hm_pool_details", "Server <hostname> (<addr>:<port>) in Pool <pool> is UP"},
	{"SERVER_DOWN_HA_COMPROMISED", "SE_HM", "se_hm_pool_details", "Server <hostname> (<addr>:<port>) is DOWN on at least one but not all Service Engines"},
	{"SERVER_UP_HA_ACTIVE", "SE_HM", "se_hm_pool_details", "Server <hostname> (<addr>:<port>) is active"},
	{"POOL_DOWN", "SE_HM", "se_hm_pool_details", "Pool <pool> is DOWN"},
	{"POOL_UP", "SE_HM", "se_hm_pool_details", "Pool <pool> is UP"},
	{"POOL_SE_HA_COMPROMISED", "SE_HM", "se_hm_pool_details", "Pool <pool> is DOWN on Service Engine <se_name>: <ha_reason>"},
	{"POOL_SE_HA_ACTIVE", "SE_HM", "se_hm_pool_details", "Pool <pool> is UP on Service Engine <se_name>"},
	{"VS_DOWN", "SE_HM", "se_hm_vs_details", "Virtual service <virtual_service> is DOWN"},
	{"VS_UP", "SE_HM", "se_hm_vs_details", "Virtual service <virtual_service> is UP"},
	{"VIP_DOWN", "SE_HM", "se_hm_vs_details", "VIP <vip_id> of virtual service <virtual_service> is DOWN"},
	{"VIP_UP", "SE_HM", "se_hm_vs_details", "VIP <vip_id> of virtual service <virtual_service> is UP"},
	{"VS_SE_HA_COMPROMISED", "SE_HM", "se_hm_vs_details", "Virtual service <virtual_service> is DOWN on Service Engine <se_name>: <ha_reason>"},
	{"VS_SE_HA_ACTIVE", "SE_HM", "se_hm_vs_details", "Virtual service <virtual_service> is UP on Service Engine <se_name>"},

	// Configuration and users.
	{"CONFIG_CREATE", "CONFIG", "config_create_details", "Config <resource_name> create status is <status> (performed by user <user>)"},
	{"CONFIG_UPDATE", "CONFIG", "config_update_details", "Config <resource_name> update status is <status> (performed by user <user>)"},
	{"CONFIG_DELETE", "CONFIG", "config_delete_details", "Config <resource_name> delete status is <status> (performed by user <user>)"},
	{"CONFIG_ACTION", "CONFIG", "config_action_details", "Action <action_name> on <resource_name> executed by <user>"},
	{"USER_LOGIN", "CONFIG", "config_user_login_details", "User <user> login from <client_ip>"},
	{"USER_LOGOUT", "CONFIG", "config_user_logout_details", "User <user> logout from <client_ip>"},

	// Service Engines.
	{"SE_DOWN", "SEMGR", "se_details", "Service Engine <name> marked down: <reason>"},
	{"SE_UP", "SEMGR", "se_details", "Service Engine <name> connected to the Controller"},

	// Server autoscale.
	{"SERVER_AUTOSCALE_OUT", "AUTOSCALE_MGR", "server_autoscaleout_info", "Scale-out of <num_scaleout_servers> server(s) due to <reason>"},
	{"SERVER_AUTOSCALE_IN", "AUTOSCALE_MGR", "server_autoscalein_info", "Scale-in of <num_scalein_servers> server(s) due to <reason>"},
	{"SERVER_AUTOSCALE_OUT_COMPLETE", "AUTOSCALE_MGR", "server_autoscaleout_complete_info", "<nscaleout> server(s) scale-out complete"},
	{"SERVER_AUTOSCALE_IN_COMPLETE", "AUTOSCALE_MGR", "server_autoscalein_complete_info", "<nscalein> server(s) scale-in complete"},
	{"SERVER_AUTOSCALE_FAILED", "AUTOSCALE_MGR", "server_autoscale_failed_info", "Server autoscale failed: <reason>"},
	// vigil's: a scale-out or scale-in that its script could not finish.
	{"SERVER_AUTOSCALE_OUT_FAILED", "AUTOSCALE_MGR", "server_autoscale_failed_info", "Scale-out of <num_servers> server(s) failed: <reason>"},
	{"SERVER_AUTOSCALE_IN_FAILED", "AUTOSCALE_MGR", "server_autoscale_failed_info", "Scale-in of <num_servers> server(s) failed: <reason>"},
	// Avi's schema names no details for the _TRIGGERED events.
	{"SERVER_AUTOSCALE_OUT_TRIGGERED", "AUTOSCALE_MGR", "", "Server scale-out triggered"},
	{"SERVER_AUTOSCALE_IN_TRIGGERED", "AUTOSCALE_MGR", "", "Server scale-in triggered"},

	// Health scores.
	{"VS_HEALTH_CHANGE", "HSMGR", "hs_details", "Virtual service health score changed from <previous_value> to <value>"},
	{"POOL_HEALTH_CHANGE", "HSMGR", "hs_details", "Pool health score changed from <previous_value> to <value>"},
	{"SERVER_HEALTH_CHANGE", "HSMGR", "hs_details", "Server health score changed from <previous_value> to <value>"},
	{"SE_HEALTH_CHANGE", "HSMGR", "hs_details", "Service Engine health score changed from <previous_value> to <value>"},

	// Certificates. Module inferred: certificate checks and renewals run
	// on the Controller's configuration side.
	{"SSL_CERT_EXPIRE", "CONFIG", "ssl_expire_details", "SSL certificate <name> expires in <days_left> days"},
	{"SSL_CERT_RENEW", "CONFIG", "ssl_renew_details", "SSL certificate <name> renewed"},
	{"SSL_CERT_RENEW_FAILED", "CONFIG", "ssl_renew_failed_details", "SSL certificate <name> renewal failed"},

	// Security and analytics. Module inferred for DOS_ATTACK.
	{"DOS_ATTACK", "METRICSMGR", "dos_attack_event_details", "DoS attack <attack> detected: <attack_count> occurrences"},
	{"METRIC_THRESHOLD_UP_VIOLATION", "METRICSMGR", "metric_threshold_up_details", "Metric <metric_id> value <current_value> exceeded threshold <threshold>"},
	{"ANOMALY", "METRICSMGR", "anomaly_details", "Anomalous metric <metric_id> of value <value> and deviation <deviation>"},

	// Scheduler. Module inferred.
	{"SCHEDULER_ACTION_SUCCESS", "CONFIG", "scheduler_action_info", "Scheduler <scheduler_uuid> action succeeded"},
	{"SCHEDULER_ACTION_FAILURE", "CONFIG", "scheduler_action_info", "Scheduler <scheduler_uuid> action failed: <status>"},

	// Licensing.
	{"LICENSE_EXPIRY", "LICENSE_MGR", "license_expiry_details", "License expiry notification"},

	// vigil's own events. controlscript_details is also the key Avi 31.2.1
	// uses for {exitcode, stdout, stderr}.
	{"CONTROLSCRIPT_SUCCEEDED", ModuleRunner, "controlscript_details", "ControlScript <controlscript> execution <execution_id> succeeded"},
	{"CONTROLSCRIPT_FAILED", ModuleRunner, "controlscript_details", "ControlScript <controlscript> execution <execution_id> failed: <status>"},
	{"POOL_METRICS", ModuleDataPlane, "pool_metrics_details", "Pool <pool>: <servers_up> of <servers_total> servers up, <requests_per_sec> requests/s, p95 <p95_latency_ms> ms"},
	{"DATASCRIPT_ERROR", ModuleDataPlane, "datascript_error_details", "DataScript <datascript> of virtual service <virtual_service> failed in <event>: <error>"},
	{"WEBHOOK_RECEIVED", ModuleSources, "webhook_received_details", "Webhook receiver <receiver> accepted delivery <delivery_id>"},
}

var catalogueByID = buildCatalogue(catalogue)

func buildCatalogue(list []Info) map[string]Info {
	m := make(map[string]Info, len(list))
	for _, in := range list {
		if !ValidEventID(in.ID) {
			panic(fmt.Sprintf("events: catalogue: invalid event id %q", in.ID))
		}
		if _, dup := m[in.ID]; dup {
			panic(fmt.Sprintf("events: catalogue: duplicate event id %q", in.ID))
		}
		if in.Module == "" || strings.ContainsAny(in.DetailsKey, " .") {
			panic(fmt.Sprintf("events: catalogue: bad entry %q", in.ID))
		}
		m[in.ID] = in
	}
	return m
}

// Lookup returns the catalogue entry of an event id.
func Lookup(id string) (Info, bool) {
	in, ok := catalogueByID[id]
	return in, ok
}

// Catalogue returns every catalogue entry, sorted by ID. The slice is the
// caller's.
func Catalogue() []Info {
	out := slices.Clone(catalogue)
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ModuleOf returns the module of an event id: the catalogue's, or
// ModuleCustom for an id the catalogue does not list.
func ModuleOf(id string) string {
	if in, ok := catalogueByID[id]; ok {
		return in.Module
	}
	return ModuleCustom
}
