// Package idle holds the result bench/idleclients prints as JSON and the
// benchmark reads.
package idle

// Result is what one idle-clients run measured; bench/idleclients -json
// prints it.
type Result struct {
	Clients         int       `json:"clients"`
	Connected       int       `json:"connected"`
	ConnectFailures int       `json:"connect_failures"`
	ConnectSeconds  float64   `json:"connect_seconds"`
	RSSNone         int64     `json:"rss_none_bytes"`
	RSSAll          int64     `json:"rss_all_bytes"`
	RSSAfter        int64     `json:"rss_after_queries_bytes"`
	RSSPerClient    float64   `json:"rss_per_idle_client_bytes"`
	Rounds          int       `json:"rounds"`
	Queries         int       `json:"queries"`
	QueryOK         int       `json:"queries_ok"`
	QueryFailures   int       `json:"query_failures"`
	LatencyAvgMs    float64   `json:"latency_avg_ms"`
	LatencyP50Ms    float64   `json:"latency_p50_ms"`
	LatencyP99Ms    float64   `json:"latency_p99_ms"`
	LatencyMaxMs    float64   `json:"latency_max_ms"`
	RoundSeconds    []float64 `json:"round_seconds"`
	ProxyCPUSeconds float64   `json:"proxy_cpu_seconds"`
	CPUPerQueryUs   float64   `json:"proxy_cpu_per_query_us"`
	Errors          []string  `json:"errors,omitempty"`
}
