//! What `rehearse readiness` prints: the verdict, why, each piece, and
//! where the page is.

use crate::report::readiness::Written;

pub fn summary(w: &Written) -> String {
    let r = &w.readiness;
    let mut out = format!("readiness: {}\n", r.verdict.word());
    for why in &r.reasons {
        out += &format!("  - {why}\n");
    }
    out += "\n";
    let rows: Vec<Vec<String>> = r
        .pieces
        .iter()
        .map(|p| {
            vec![
                p.title.clone(),
                if p.required { "required" } else { "" }.to_string(),
                p.state.word().to_string(),
                p.figure.clone(),
            ]
        })
        .collect();
    out += &crate::text::table(&["piece", "", "state", "figure"], &rows);
    out += &format!("\n{}\n", r.estate_note);
    out += &format!(
        "\npage: {}\n      {}\n      {}\n",
        w.html.display(),
        w.markdown.display(),
        w.json.display()
    );
    out
}
