package dashboards

import (
	"fmt"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// board declares one dashboard.
type board struct {
	uid, title, description string
	tags                    []string
	scope                   bool // adds the scope variable (all/clean)
	rows                    []row
}

// row is a titled group of panels.
type row struct {
	title  string
	panels []panel
}

// viz is a panel's visualization.
type viz int

const (
	vizTimeSeries viz = iota
	vizTable
	vizStat
	vizBarChart
)

// panel declares one panel and its query: sql for ClickHouse, prom for
// Prometheus (one target per expression).
type panel struct {
	title, description string
	viz                viz
	width, height      uint32
	unit               string    // unit of every field
	columnUnits        []colUnit // per-column units (tables)
	sql                *sqlQuery
	prom               []promQuery
	xField             string // bar charts: the category column
}

// colUnit is the unit of one result column.
type colUnit struct{ column, unit string }

// sqlQuery is a ClickHouse panel's SQL and the columns it returns, in
// order. Time series queries return "time" first (the plugin pivots the
// rows by their string columns into one series per value).
type sqlQuery struct {
	text    string
	columns []string
}

// promQuery is one PromQL expression and its legend.
type promQuery struct{ expr, legend string }

// Units, as Grafana names them.
const (
	unitPercent = "percentunit"
	unitMs      = "ms"
	unitSeconds = "s"
	unitShort   = "short"
	unitOps     = "ops"
)

// scopeVariable is the dashboard variable that selects the window tables'
// scope. Queries use it as ${scope:sqlstring}, a quoted and escaped SQL
// string, so no value reaches the SQL unquoted.
func scopeVariable() *dashboard.CustomVariableBuilder {
	all := dashboard.VariableOption{
		Selected: cog.ToPtr(true),
		Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr("all")},
		Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr("all")},
	}
	clean := dashboard.VariableOption{
		Selected: cog.ToPtr(false),
		Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr("clean")},
		Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr("clean")},
	}
	return dashboard.NewCustomVariableBuilder("scope").
		Label("Scope").
		Description("all: every user; clean: without the users the bot processor flagged in an overlapping window").
		Values(dashboard.StringOrMap{String: cog.ToPtr("all,clean")}).
		Current(all).
		AllowCustomValue(false).
		Options([]dashboard.VariableOption{all, clean})
}

// build turns the declaration into an SDK dashboard. Panels get ids in
// declaration order, so the output is stable.
func (b board) build() (dashboard.Dashboard, error) {
	db := dashboard.NewDashboardBuilder(b.title).
		Uid(b.uid).
		Description(b.description).
		Tags(b.tags).
		Timezone("utc").
		Time("now-6h", "now").
		Refresh("1m").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Editable().
		Link(dashboard.NewDashboardLinkBuilder("questline").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"questline"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
	if b.scope {
		db.WithVariable(scopeVariable())
	}
	id := uint32(0)
	for _, r := range b.rows {
		id++
		db.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			pb, err := p.builder(id)
			if err != nil {
				return dashboard.Dashboard{}, fmt.Errorf("panel %q: %w", p.title, err)
			}
			db.WithPanel(pb)
		}
	}
	return db.Build()
}

// targets returns the panel's queries and its data source.
func (p panel) targets() ([]cog.Builder[variants.Dataquery], common.DataSourceRef, error) {
	switch {
	case p.sql != nil && len(p.prom) == 0:
		format := formatTable
		if p.viz == vizTimeSeries {
			format = formatTimeSeries
		}
		return []cog.Builder[variants.Dataquery]{newCHQuery("A", p.sql.text, format)}, clickHouseRef(), nil
	case p.sql == nil && len(p.prom) > 0:
		var ts []cog.Builder[variants.Dataquery]
		for i, q := range p.prom {
			pq := prometheus.NewDataqueryBuilder().
				RefId(refID(i)).
				Datasource(prometheusRef()).
				Expr(q.expr).
				LegendFormat(q.legend)
			if p.viz == vizStat || p.viz == vizTable {
				pq.Instant()
			} else {
				pq.Range()
			}
			ts = append(ts, pq)
		}
		return ts, prometheusRef(), nil
	}
	return nil, common.DataSourceRef{}, fmt.Errorf("a panel needs either SQL or PromQL")
}

// refID names the i-th query A, B, C, ...
func refID(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return "Q" + strconv.Itoa(i)
}

// unitOverrides returns the per-column unit overrides.
func (p panel) unitOverrides() []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	var out []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]
	for _, cu := range p.columnUnits {
		out = append(out, dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
			Matcher(dashboard.MatcherConfig{Id: "byName", Options: cu.column}).
			Properties([]dashboard.DynamicConfigValue{{Id: "unit", Value: cu.unit}}))
	}
	return out
}

// builder returns the SDK builder of the panel, with id.
func (p panel) builder(id uint32) (cog.Builder[dashboard.Panel], error) {
	targets, ds, err := p.targets()
	if err != nil {
		return nil, err
	}
	w, h := p.width, p.height
	if w == 0 {
		w = 12
	}
	if h == 0 {
		h = 8
	}
	unit := p.unit
	if unit == "" {
		unit = unitShort
	}
	switch p.viz {
	case vizTimeSeries:
		return timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(ds).Targets(targets).Span(w).Height(h).Unit(unit).
			Overrides(p.unitOverrides()).
			FillOpacity(10).ShowPoints(common.VisibilityModeNever).
			Legend(common.NewVizLegendOptionsBuilder().
				DisplayMode(common.LegendDisplayModeTable).
				Placement(common.LegendPlacementBottom).
				ShowLegend(true).
				Calcs([]string{"mean", "max", "lastNotNull"})).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).
				Sort(common.SortOrderDescending)), nil
	case vizTable:
		return table.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(ds).Targets(targets).Span(w).Height(h).Unit(unit).
			Overrides(p.unitOverrides()), nil
	case vizStat:
		return stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(ds).Targets(targets).Span(w).Height(h).Unit(unit).
			Overrides(p.unitOverrides()).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
			GraphMode(common.BigValueGraphModeNone), nil
	case vizBarChart:
		return barchart.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(ds).Targets(targets).Span(w).Height(h).Unit(unit).
			Overrides(p.unitOverrides()).
			XField(p.xField).
			Stacking(common.StackingModeNormal).
			ShowValue(common.VisibilityModeAuto), nil
	}
	return nil, fmt.Errorf("unknown visualization %d", p.viz)
}
