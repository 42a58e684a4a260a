//! `rehearse query`: the report as a table (and its plan with --explain),
//! and one line saying how it was served.

use crate::query::QueryOutcome;
use crate::repo::reporting::ReportData;
use crate::text::{money, table};

pub fn result(out: &QueryOutcome) -> String {
    let mut s = String::new();
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = match &out.report.data {
        ReportData::Dashboard(d) => (
            vec!["date", "revenue", "expenses", "net"],
            d.days
                .iter()
                .map(|x| {
                    vec![
                        x.date.to_string(),
                        money(x.revenue_cents),
                        money(x.expense_cents),
                        money(x.net_cents),
                    ]
                })
                .collect(),
        ),
        ReportData::Pnl(p) => {
            let mut rows: Vec<Vec<String>> = p
                .lines
                .iter()
                .map(|l| {
                    vec![
                        l.kind.clone(),
                        l.category.clone(),
                        money(l.amount_cents),
                        l.entries.to_string(),
                    ]
                })
                .collect();
            rows.push(vec![
                "revenue".into(),
                "total".into(),
                money(p.revenue_cents),
                String::new(),
            ]);
            rows.push(vec![
                "expense".into(),
                "total".into(),
                money(p.expense_cents),
                String::new(),
            ]);
            rows.push(vec![
                "net".into(),
                String::new(),
                money(p.net_cents),
                String::new(),
            ]);
            (vec!["kind", "category", "amount", "entries"], rows)
        }
        ReportData::Properties(b) => (
            vec!["property", "name", "kind", "revenue", "expenses", "net"],
            b.properties
                .iter()
                .map(|p| {
                    vec![
                        p.property_id.to_string(),
                        p.name.clone(),
                        p.kind.clone(),
                        money(p.revenue_cents),
                        money(p.expense_cents),
                        money(p.net_cents),
                    ]
                })
                .collect(),
        ),
        ReportData::Ledger(l) => (
            vec![
                "date", "kind", "id", "property", "category", "amount", "vendor",
            ],
            l.entries
                .iter()
                .map(|e| {
                    vec![
                        e.business_date.to_string(),
                        e.kind.clone(),
                        e.id.to_string(),
                        e.property_id.to_string(),
                        e.category.clone(),
                        money(e.amount_cents),
                        e.vendor.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        ReportData::Portfolio(p) => (
            vec!["rank", "organization", "name", "revenue", "expenses"],
            p.iter()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        (i + 1).to_string(),
                        r.organization_id.to_string(),
                        r.name.clone(),
                        money(r.revenue_cents),
                        money(r.expense_cents),
                    ]
                })
                .collect(),
        ),
    };
    if let ReportData::Pnl(p) = &out.report.data {
        let (start, next) = p.month_start.month_bounds();
        let (y, m, _) = start.ymd();
        s += &format!(
            "profit and loss of organization {} for {y:04}-{m:02} ({start} to {}, every entry dated in the month)\n",
            p.organization_id,
            next.plus(-1)
        );
    }
    s += &table(&header, &rows);
    if let ReportData::Ledger(l) = &out.report.data {
        match &l.next {
            Some(c) => s += &format!("next page: --after {c}\n"),
            None => s += "last page\n",
        }
    }
    if let Some(x) = &out.explain {
        s += &format!("\n{}\n\n", x.plan);
        for t in &x.tables {
            if t.partitions == 0 {
                s += &format!("{}: a plain table\n", t.table);
            } else if let Some(leaf) = &t.leaf {
                s += &format!(
                    "{}: the organization's partition {leaf} named directly: 1 of {} partitions planned, {} run, none pruned\n",
                    t.table, t.partitions, t.partitions_touched
                );
            } else {
                s += &format!(
                    "{}: {} of {} partitions planned, {} run; Subplans Removed: {}{}\n",
                    t.table,
                    t.partitions_planned,
                    t.partitions,
                    t.partitions_touched,
                    t.subplans_removed,
                    if t.subplans_removed > 0 {
                        " (pruned at executor start-up, each still locked)"
                    } else {
                        ""
                    }
                );
            }
        }
        s += &format!("(explained on the {} in {} mode)\n", x.target, x.mode);
    }
    s
}

/// Mode, what served it (primary, replica, cache) and replica lag.
pub fn served(out: &QueryOutcome) -> String {
    let cache = match out.report.cache {
        Some(c) => format!(
            ", cache {}",
            serde_json::to_value(c)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?")
        ),
        None => String::new(),
    };
    let lag = out
        .stats
        .routing
        .lag_bytes
        .iter()
        .map(|(n, l)| match l {
            Some(b) => format!("{n} lag {b} bytes"),
            None => format!("{n} not answering"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} mode, served by {}{cache}{}",
        out.report.mode,
        serde_json::to_value(out.report.source)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("?"),
        if lag.is_empty() {
            String::new()
        } else {
            format!("; {lag}")
        }
    ) + &match &out.cohort {
        Some(c) => format!(
            "; organization {} is in the {} cohort ({})",
            c.organization_id, c.mode, c.reason
        ),
        None => String::new(),
    }
}
