use super::*;

fn sample() -> Doc {
    let mut d = Doc::new("a <page> & more");
    d.push(
        Block::heading(
            1,
            Line::default().toned(Tone::Fail, "FAIL").text(" under <x>"),
        )
        .id("verdict"),
    );
    d.push(Block::list(vec![Line::default().toned(Tone::Fail, "a|b <script>")]).id("why"));
    d.push(Block::para(
        Line::default()
            .text("run ")
            .code("r&1")
            .text("; ")
            .link("its <report>", "a b/report.html#x\"y"),
    ));
    let mut t = Table::new(&["step", "p99", "what"])
        .numeric_from(1)
        .wrap(2)
        .id("t");
    t.row([
        Cell::from("a|b"),
        Cell::toned(Tone::Pass, "ok"),
        Cell::from("<i>"),
    ]);
    d.push(t.block());
    let mut empty = Table::new(&["x", "y"]).id("e");
    empty.empty = Some(Cell::toned(Tone::Fail, "nothing was checked"));
    d.push(empty.block());
    d.push(Block::section("s", vec![Block::pre("a  b\n")]));
    d.push(Block::Figure {
        name: "timeline".into(),
        png: "charts/timeline.png".into(),
        svg: "<svg></svg>".into(),
    });
    d
}

#[test]
fn markdown_escapes_cells_and_sets_what_did_not_pass_in_bold() {
    let md = Markdown.render(&sample());
    assert_eq!(
        md,
        "# **FAIL** under <x>\n\n\
         - **a|b <script>**\n\n\
         run `r&1`; [its <report>](a%20b/report.html#x\"y)\n\n\
         | step | p99 | what |\n|---|---:|---|\n| a\\|b | ok | <i> |\n\n\
         | x | y |\n|---|---|\n| **nothing was checked** |\n\n\
         ```\na  b\n```\n\n\
         ![timeline](charts/timeline.png)\n\n"
    );
}

#[test]
fn html_escapes_every_text_and_embeds_only_the_charts() {
    let h = Html.render(&sample());
    assert!(h.starts_with("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>a &lt;page&gt; &amp; more</title>"), "{h}");
    for want in [
        "<h1 id=\"verdict\"><span class=\"fail\">FAIL</span> under &lt;x&gt;</h1>",
        "<ul id=\"why\"><li><span class=\"fail\">a|b &lt;script&gt;</span></li></ul>",
        "<p>run <code>r&amp;1</code>; <a href=\"a b/report.html#x&quot;y\">its &lt;report&gt;</a></p>",
        "<table id=\"t\"><tr><th>step</th><th>p99</th><th class=\"text\">what</th></tr>\
         <tr><td>a|b</td><td class=\"pass\">ok</td><td class=\"text\">&lt;i&gt;</td></tr></table>",
        "<tr><td colspan=\"2\" class=\"fail\">nothing was checked</td></tr>",
        "<section id=\"s\"><pre>a  b\n</pre></section>",
        "<figure id=\"chart-timeline\"><svg></svg></figure>",
    ] {
        assert!(h.contains(want), "{want}\nin\n{h}");
    }
    assert!(!h.contains("<script>") && !h.contains("<i>"));
    assert!(h.ends_with("</body></html>\n"));
}

#[test]
fn escape_is_the_templates_escaping() {
    assert_eq!(html::escape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
}
