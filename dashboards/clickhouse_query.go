package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// The Foundation SDK ships no query type for the ClickHouse plugin
// (grafana-clickhouse-datasource), so this file defines one, as the SDK's
// "custom query type" guide describes. Only what a raw-SQL query of the
// plugin (v4) reads is written.

// chFormat is the plugin's result format (sqlds' FormatQueryOption):
// time series frames are pivoted from long to wide by their string columns
// and need a column named "time"; tables are passed through.
type chFormat int

const (
	formatTimeSeries chFormat = 0
	formatTable      chFormat = 1
)

// chQuery is one raw-SQL query of the ClickHouse data source.
type chQuery struct {
	RefID      string               `json:"refId"`
	Datasource common.DataSourceRef `json:"datasource"`
	EditorType string               `json:"editorType"`
	QueryType  string               `json:"queryType"`
	Format     chFormat             `json:"format"`
	RawSQL     string               `json:"rawSql"`
}

// ImplementsDataqueryVariant marks chQuery as a panel target.
func (chQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (chQuery) DataqueryType() string { return ClickHouseType }

// Validate accepts every query: the SQL is checked by the tests against a
// real ClickHouse.
func (chQuery) Validate() error { return nil }

// Equals compares two queries field by field.
func (q chQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(chQuery)
	return ok && q.RefID == o.RefID && q.EditorType == o.EditorType && q.QueryType == o.QueryType &&
		q.Format == o.Format && q.RawSQL == o.RawSQL &&
		deref(q.Datasource.Type) == deref(o.Datasource.Type) && deref(q.Datasource.Uid) == deref(o.Datasource.Uid)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// chQueryBuilder builds a chQuery for a panel.
type chQueryBuilder struct{ q chQuery }

var _ cog.Builder[variants.Dataquery] = (*chQueryBuilder)(nil)

// newCHQuery returns a builder of the query sql in the given format.
func newCHQuery(refID, sql string, format chFormat) *chQueryBuilder {
	queryType := "timeSeries"
	if format == formatTable {
		queryType = "table"
	}
	return &chQueryBuilder{q: chQuery{
		RefID:      refID,
		Datasource: clickHouseRef(),
		EditorType: "sql",
		QueryType:  queryType,
		Format:     format,
		RawSQL:     sql,
	}}
}

// Build returns the query.
func (b *chQueryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

// clickHouseRef is the provisioned ClickHouse data source
// (dashboards/provisioning/datasources/clickhouse.yml).
func clickHouseRef() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(ClickHouseType), Uid: cog.ToPtr(ClickHouseUID)}
}

// prometheusRef is the provisioned Prometheus data source.
func prometheusRef() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(PrometheusUID)}
}
