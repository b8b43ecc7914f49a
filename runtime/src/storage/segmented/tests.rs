use super::*;

#[test]
fn the_segments_partition_a_full_block_and_double() {
    let mut next = 0;
    for s in 0..SEGMENTS {
        assert_eq!(first_point(s), next, "segment {s}");
        next += points_in(s);
        if s >= 2 {
            assert_eq!(points_in(s), 2 * points_in(s - 1));
        }
    }
    assert_eq!(next, MAX_POINTS);
    for i in 0..MAX_POINTS {
        let (s, at) = locate(i);
        assert!(at < points_in(s), "point {i}");
        assert_eq!(first_point(s) + at, i);
    }
}

#[test]
fn a_segment_is_allocated_by_the_first_point_written_into_it() {
    let block = Segmented::new(&Arena::default());
    let empty = block.bytes();
    for i in 0..HEAD {
        block.write(i, Point::new(i as i64, 10 * i as u64), None);
    }
    assert_eq!(block.bytes(), empty, "the head comes with the block");
    block.write(HEAD, Point::new(HEAD as i64, 0), None);
    assert_eq!(block.bytes(), empty + segment_bytes(1));
    assert_eq!(
        segment_bytes(1),
        2 * HEAD * 8 + 16,
        "the columns and a header"
    );
    assert_eq!(
        Segmented::full(&Arena::default()).bytes(),
        Segmented::full_bytes()
    );
    let more = Segmented::full_bytes() - empty;
    let columns = 2 * (MAX_POINTS - HEAD) * 8;
    assert!(
        more >= columns && more <= columns + 16 * (SEGMENTS - 1),
        "{more}"
    );
}

#[test]
fn a_run_written_at_once_lands_where_point_by_point_writes_do() {
    let records: Vec<Record> = (0..MAX_POINTS as i64 - 5)
        .map(|t| Record::new(1, t * 3, t as u64 + 9))
        .collect();
    for from in [0, 1, HEAD - 1, HEAD, 3 * HEAD + 1] {
        let (one_by_one, at_once) = (
            Segmented::new(&Arena::default()),
            Segmented::new(&Arena::default()),
        );
        let run = &records[..records.len() - from];
        for (k, r) in run.iter().enumerate() {
            one_by_one.write(from + k, Point::new(r.key.ts, r.value), None);
        }
        at_once.write_records(from, run, None);
        for i in from..from + run.len() {
            assert_eq!(
                at_once.point(i),
                one_by_one.point(i),
                "from {from}, point {i}"
            );
        }
        assert_eq!(at_once.bytes(), one_by_one.bytes(), "from {from}");
    }
}

#[test]
fn a_view_reads_published_points_across_segments() {
    let block = Segmented::new(&Arena::default());
    let n = MAX_POINTS - 3;
    for i in 0..n {
        block.write(i, Point::new(100 + i as i64, i as u64 * 7), None);
    }
    assert_eq!(block.view().len(), 0, "nothing published");
    block.len_word().store(n as u64, Ordering::Release);
    let view = block.view();
    assert_eq!(view.len(), n);
    for i in 0..n {
        assert_eq!((view.ts(i), view.value(i)), (100 + i as i64, i as u64 * 7));
        assert_eq!(block.point(i), (100 + i as i64, i as u64 * 7));
    }
    let mut seen = Vec::new();
    view.visit(HEAD - 1, n - 1, &mut |t, v| seen.push((t, v)));
    let want: Vec<_> = (HEAD - 1..n - 1)
        .map(|i| (100 + i as i64, i as u64 * 7))
        .collect();
    assert_eq!(seen, want);
    let (mut ts, mut values) = (Vec::new(), Vec::new());
    view.columns_into(&mut ts, &mut values);
    assert_eq!(ts, (0..n).map(|i| 100 + i as i64).collect::<Vec<_>>());
    assert_eq!(values.len(), n);
}

/// A block the merge froze and a version may still read, published.
fn frozen_block(points: usize) -> Arc<Segmented> {
    let block = Arc::new(Segmented::new(&Arena::default()));
    for i in 0..points {
        block.write(i, Point::new(i as i64, i as u64), None);
    }
    block.len_word().store(points as u64, Ordering::Release);
    block
}

#[test]
fn a_spare_block_is_reused_once_nothing_else_holds_it_and_comes_back_empty() {
    let mut spare = Spare::default();
    let version = frozen_block(MAX_POINTS);
    spare.retire(&version);
    assert!(spare.take().is_none(), "a version still holds it");
    assert_eq!(spare.len(), 1);
    drop(version);
    let block = spare.take().expect("nothing else holds it");
    assert_eq!(spare.len(), 0);
    assert_eq!(block.view().len(), 0, "reused blocks start empty");
    assert_eq!(
        block.bytes(),
        Segmented::new(&Arena::default()).bytes(),
        "with their head only"
    );
    assert_eq!(spare.segments.counts(), [1; SEGMENTS - 1], "the rest kept");
    // A fill past the head takes the kept segment, old points and all.
    let run: Vec<Record> = (0..HEAD as i64 + 2)
        .map(|t| Record::new(1, 7 + t, 70 + t as u64))
        .collect();
    block.write_records(0, &run, Some(&spare.segments));
    assert_eq!(
        spare.segments.counts()[0],
        0,
        "segment 1 came from the spare"
    );
    assert_eq!(spare.segments.counts()[1..], [1; SEGMENTS - 2]);
    block.len_word().store(run.len() as u64, Ordering::Release);
    let mut points = Vec::new();
    block
        .view()
        .visit(0, run.len(), &mut |t, v| points.push((t, v)));
    let written: Vec<_> = run.iter().map(|r| (r.key.ts, r.value)).collect();
    assert_eq!(points, written, "old points are never seen");
}

#[test]
fn the_spare_list_keeps_the_newest_blocks_and_looks_at_the_oldest_first() {
    let mut spare = Spare::default();
    let held: Vec<_> = (0..Spare::KEEP + 3).map(|_| frozen_block(1)).collect();
    for block in &held {
        spare.retire(block);
    }
    assert_eq!(spare.len(), Spare::KEEP);
    // The three oldest left the list: dropping them frees them.
    assert!(held[..3].iter().all(|b| Arc::strong_count(b) == 1));
    let newest = Arc::as_ptr(&held[Spare::KEEP + 2]);
    drop(held);
    let first = spare.take().expect("every kept block is free now");
    assert_ne!(Arc::as_ptr(&first), newest);
    // Only the oldest few are looked at: held ones there mean none.
    let mut spare = Spare::default();
    let mut held: Vec<_> = (0..Spare::LOOK).map(|_| frozen_block(1)).collect();
    for block in &held {
        spare.retire(block);
    }
    spare.retire(&frozen_block(1));
    assert!(
        spare.take().is_none(),
        "the free block is past the ones looked at"
    );
    held.clear();
    assert!(spare.take().is_some());
}
