//! `shmchan-bench plot`: the suite's throughput table (its `--json` output) as an SVG chart.

use std::path::Path;

use crate::common::Res;

/// Draws throughput (M items/s, log scale) against batch size for each transport, from the
/// JSON that `shmchan-bench suite --json` writes.
pub fn plot(input: &Path, output: &Path) -> Res<()> {
    use plotters::prelude::*;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    let rows = v["throughput"]
        .as_array()
        .ok_or("no throughput in the JSON")?;
    let batches = [1u64, 64, 4096, 8192];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows {
        let t = r["transport"].as_str().unwrap_or("?").to_string();
        let b = r["batch_items"].as_u64().unwrap_or(0);
        let x = batches.iter().position(|&x| x == b).unwrap_or(0) as f64;
        let y = r["items_per_sec"].as_f64().unwrap_or(0.0) / 1e6;
        match series.iter_mut().find(|s| s.0 == t) {
            Some(s) => s.1.push((x, y)),
            None => series.push((t, vec![(x, y)])),
        }
    }
    let root = SVGBackend::new(output, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "shmchan-bench suite: throughput by batch size (u64 items, 2 processes)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..3.2f64, (0.5f64..20_000f64).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "batch 1".into(),
            1 => "batch 64".into(),
            2 => "batch 4096".into(),
            3 => "64 KiB msgs".into(),
            _ => String::new(),
        })
        .y_desc("million items per second (log)")
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
