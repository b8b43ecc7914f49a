use super::bound::{HUGE_CHUNK, MAX_CHUNK, MAX_LEN};
use super::*;
use std::sync::atomic::Ordering;

mod given_back;

/// `len` bytes that differ with `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![seed; len];
    // A few marks, not every byte (Miri runs these tests).
    for i in (0..len).step_by(61) {
        out[i] = (i as u8).wrapping_mul(31) ^ seed;
    }
    out
}

#[test]
fn a_block_holds_its_bytes_and_its_clones_share_them() {
    let arena = Arena::default();
    let want = bytes(100, 7);
    let block = arena.alloc(&want);
    let copy = block.clone();
    assert_eq!(&*block, &want[..]);
    assert_eq!(copy.as_ptr(), block.as_ptr());
    drop(block);
    assert_eq!(&*copy, &want[..]);
    assert!(arena.alloc(&[]).is_empty());
}

#[test]
fn a_freed_piece_is_reused_for_the_same_size_only() {
    let arena = Arena::default();
    let first = arena.alloc(&bytes(100, 1));
    let at = first.as_ptr();
    let copy = first.clone();
    drop(first);
    // Still held by the copy: not reused.
    let other = arena.alloc(&bytes(100, 2));
    assert_ne!(other.as_ptr(), at);
    drop(copy);
    // A size of another piece size: not reused either.
    let longer = arena.alloc(&bytes(100 + GRAIN, 3));
    assert_ne!(longer.as_ptr(), at);
    // The same piece size (97..=104 bytes with the header): reused.
    let again = arena.alloc(&bytes(97, 4));
    assert_eq!(again.as_ptr(), at);
    assert_eq!(&*again, &bytes(97, 4)[..]);
}

#[test]
fn pieces_never_overlap_as_chunks_fill_and_grow() {
    let arena = Arena::default();
    let mut live: Vec<(FrozenBlock, Vec<u8>)> = Vec::new();
    let mut round = 0u8;
    for len in (0..300).map(|i| (i * 397) % (MAX_LEN + 1)) {
        let want = bytes(len, round);
        live.push((arena.alloc(&want), want));
        round = round.wrapping_add(1);
        if live.len().is_multiple_of(5) {
            // Free every third one, so that later ones reuse pieces.
            let mut i = 0;
            live.retain(|_| {
                i += 1;
                i % 3 != 0
            });
        }
    }
    for (block, want) in &live {
        assert_eq!(&**block, &want[..]);
    }
    let chunks = arena.chunk_bytes();
    let held: usize = live.iter().map(|(b, _)| piece_bytes(b.len())).sum();
    assert!(chunks >= held, "{chunks} bytes of chunks hold {held}");
}

#[test]
fn chunks_double_up_to_the_largest_size() {
    let arena = Arena::default();
    let mut sizes = Vec::new();
    let mut blocks = Vec::new();
    let piece = bytes(4000, 0);
    while sizes.len() < 6 {
        blocks.push(arena.alloc(&piece));
        let now = arena.chunk_bytes();
        if sizes.last() != Some(&now) {
            sizes.push(now);
        }
    }
    let grown: Vec<usize> = sizes.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(sizes[0], 16 << 10);
    assert_eq!(grown, [32 << 10, 64 << 10, 128 << 10, 256 << 10, 256 << 10]);
    // The longest piece in a new arena: its first chunk holds it.
    let arena = Arena::default();
    let longest = arena.alloc(&bytes(MAX_LEN, 1));
    assert_eq!(&*longest, &bytes(MAX_LEN, 1)[..]);
    assert!(arena.chunk_bytes() >= piece_bytes(MAX_LEN));
}

#[test]
fn reserved_chunks_are_carved_first_and_counted_once_started() {
    let arena = Arena::default();
    assert_eq!(arena.reserve(MAX_CHUNK - 1), 0, "rounded down");
    assert_eq!(arena.reserve(2 * MAX_CHUNK + 1), 2 * MAX_CHUNK);
    assert_eq!(arena.reserved_left(), 2 * MAX_CHUNK);
    assert_eq!((arena.chunk_bytes(), arena.take_reserved_started()), (0, 0));
    // The first piece starts a reserved chunk (the largest size, not
    // the first size of a new arena's growth).
    let mut blocks = vec![arena.alloc(&bytes(MAX_LEN, 1))];
    assert_eq!(arena.chunk_bytes(), MAX_CHUNK);
    assert_eq!(arena.reserved_left(), MAX_CHUNK);
    assert_eq!(arena.take_reserved_started(), MAX_CHUNK);
    assert_eq!(arena.take_reserved_started(), 0, "counted once");
    // Four of the longest pieces fill a chunk: the fifth starts the
    // second reserved one, the ninth a new chunk.
    for i in 2..=9 {
        blocks.push(arena.alloc(&bytes(MAX_LEN, i)));
        let reserved_started = arena.take_reserved_started();
        assert_eq!(
            reserved_started,
            if i == 5 { MAX_CHUNK } else { 0 },
            "piece {i}"
        );
    }
    assert_eq!(arena.reserved_left(), 0);
    assert_eq!(arena.chunk_bytes(), 3 * MAX_CHUNK);
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(&**b, &bytes(MAX_LEN, i as u8 + 1)[..]);
    }
    // A reserve never started is freed with the arena (Miri reports a
    // leak otherwise).
    let unused = Arena::default();
    assert_eq!(unused.reserve(MAX_CHUNK), MAX_CHUNK);
    drop(unused);
}

#[test]
fn blocks_outlive_their_arena_and_free_its_chunks_last() {
    let arena = Arena::default();
    let want = bytes(300, 9);
    let block = arena.alloc(&want);
    drop(arena);
    assert_eq!(&*block, &want[..]);
    // Dropping the last block frees the chunks (Miri reports a leak
    // otherwise).
    drop(block);
}

#[test]
fn blocks_dropped_on_other_threads_return_to_the_arena() {
    let arena = Arena::default();
    let blocks: Vec<FrozenBlock> = (0..64).map(|i| arena.alloc(&bytes(40, i))).collect();
    let at: Vec<usize> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
    std::thread::scope(|s| {
        let mut blocks = blocks.into_iter();
        for start in [0, 32] {
            let half: Vec<FrozenBlock> = blocks.by_ref().take(32).collect();
            s.spawn(move || {
                for (i, b) in half.into_iter().enumerate() {
                    assert_eq!(&*b, &bytes(40, i as u8 + start)[..]);
                    drop(b);
                }
            });
        }
    });
    let again: Vec<FrozenBlock> = (0..64).map(|i| arena.alloc(&bytes(40, i))).collect();
    let mut reused: Vec<usize> = again.iter().map(|b| b.as_ptr() as usize).collect();
    let mut before = at;
    reused.sort_unstable();
    before.sort_unstable();
    assert_eq!(reused, before, "every freed piece is handed out again");
}

#[test]
fn a_piece_freed_while_the_lock_is_held_is_put_back_when_it_is_let_go() {
    let arena = Arena::default();
    let block = arena.alloc(&bytes(64, 9));
    let at = block.as_ptr() as usize;
    let freed = arena.with_state(|_| {
        // The lock is held here: the drop on another thread cannot take
        // it, and leaves the piece on the returned stack.
        std::thread::scope(|s| s.spawn(move || drop(block)).join().unwrap());
        !arena.nothing_returned_pending()
    });
    assert!(
        freed,
        "the piece waited on the stack while the lock was held"
    );
    assert!(
        arena.nothing_returned_pending(),
        "letting go of the lock put the piece back"
    );
    assert_eq!(
        arena.alloc(&bytes(64, 1)).as_ptr() as usize,
        at,
        "and it is reused"
    );
}

#[test]
fn pieces_freed_on_many_threads_while_the_merge_allocates_all_come_back() {
    // Freed while the merge holds the lock, a piece waits on the returned
    // stack; none may be left there once every thread is done (its chunk
    // would never be given back, nor the piece handed out again).
    let arena = Arena::default();
    let (threads, per) = if cfg!(miri) { (3, 24) } else { (4, 4000) };
    let blocks: Vec<Vec<FrozenBlock>> = (0..threads)
        .map(|t| {
            let t = t as u8;
            (0..per)
                .map(|i| arena.alloc(&bytes(200, t ^ i as u8)))
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for (t, mine) in blocks.into_iter().enumerate() {
            s.spawn(move || {
                for (i, b) in mine.into_iter().enumerate().rev() {
                    assert_eq!(&*b, &bytes(200, t as u8 ^ i as u8)[..]);
                    drop(b);
                }
            });
        }
        // The merge, meanwhile: blocks of two sizes, each freed at once.
        let arena = &arena;
        s.spawn(move || {
            for i in 0..per {
                let len = if i % 2 == 0 { 200 } else { 120 };
                let block = arena.alloc(&bytes(len, i as u8));
                assert_eq!(&*block, &bytes(len, i as u8)[..]);
            }
        });
    });
    assert!(
        arena.nothing_returned_pending(),
        "a freed piece was left on the stack"
    );
    // Nothing is handed out: every chunk but the one being carved was
    // given back.
    assert_eq!(
        arena.given_back_bytes() + arena.carving_size(),
        arena.chunk_bytes(),
        "{:?}",
        arena.chunk_sizes()
    );
}

#[test]
fn the_length_in_the_pointer_is_the_headers() {
    let arena = Arena::default();
    for len in [0, 1, 100, 4096, MAX_LEN] {
        let want = bytes(len, 3);
        let block = arena.alloc(&want);
        assert_eq!(block.len(), len);
        assert_eq!(&*block, &want[..]);
        assert_eq!(block.clone().len(), len);
        // Tagged on this 64-bit target (a 0 length needs no tag).
        assert_eq!(block.tagged_len(), len);
    }
}

#[test]
#[should_panic(expected = "longer than")]
fn a_block_longer_than_a_piece_holds_is_refused() {
    Arena::default().alloc(&bytes(MAX_LEN + 1, 0));
}

#[test]
fn arenas_for_huge_pages_share_their_nodes_2_mib_chunks_in_slices() {
    // Blocks of MAX_LEN bytes until 640 KiB of them: past the chunks
    // that double up to 256 KiB (64 + 128 + 256 KiB for pieces this
    // long, 7 of them), into a slice (3 more).
    let fill = |arena: &Arena, salt: u8| -> Vec<FrozenBlock> {
        (0..(640 << 10) / MAX_LEN)
            .map(|i| arena.alloc(&bytes(MAX_LEN, i as u8 ^ salt)))
            .collect()
    };
    let node = NodeMemory::new(crate::slot::Binder::default(), true);
    let (one, two) = (Arena::new(&node), Arena::new(&node));
    let (blocks_one, blocks_two) = (fill(&one, 0), fill(&two, 0x5a));
    // Each arena: small chunks doubling to MAX_CHUNK, then slices of
    // MAX_CHUNK; none has a 2 MiB chunk of its own.
    for arena in [&one, &two] {
        let sizes = arena.chunk_sizes();
        assert!(
            sizes.windows(2).all(|w| w[0] <= w[1]) && sizes.iter().all(|&s| s <= MAX_CHUNK),
            "{sizes:?}"
        );
        assert_eq!(
            sizes.iter().filter(|&&s| s == MAX_CHUNK).count(),
            2,
            "{sizes:?}"
        );
    }
    // Both arenas' slices (one each, after a MAX_CHUNK of their own)
    // lie in the node's one huge chunk, 2 MiB aligned: what the node maps
    // past the arenas' own chunks is one huge chunk, not one an arena.
    let huge = node.huge_chunks().expect("huge pages on").starts();
    assert_eq!(huge.len(), 1, "{huge:?}");
    assert_eq!(huge[0] % HUGE_CHUNK, 0, "{huge:?}");
    let in_huge = |arena: &Arena| {
        let starts = arena.chunk_starts(MAX_CHUNK);
        starts
            .iter()
            .filter(|&&at| (huge[0]..huge[0] + HUGE_CHUNK).contains(&at))
            .count()
    };
    assert_eq!((in_huge(&one), in_huge(&two)), (1, 1));
    for (salt, blocks) in [(0, &blocks_one), (0x5a, &blocks_two)] {
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(&**block, &bytes(MAX_LEN, i as u8 ^ salt)[..]);
        }
    }
    // Chunks emptied are given back and carved again (the slice being
    // carved too) before the node slices another (Miri checks the
    // layouts when the arenas and then the node's chunk go).
    drop(blocks_two);
    assert_eq!(two.given_back_bytes(), (64 + 128 + 256) << 10);
    let again = fill(&two, 0xa5);
    assert_eq!(node.huge_chunks().unwrap().starts().len(), 1);
    assert_eq!(&*again[7], &bytes(MAX_LEN, 7 ^ 0xa5)[..]);
    // Without huge pages the chunks stop growing at MAX_CHUNK.
    let plain = Arena::default();
    let _blocks = fill(&plain, 0);
    assert_eq!(plain.chunk_sizes().iter().max(), Some(&MAX_CHUNK));
    // Reserved chunks (MAX_CHUNK, touched ahead) come first, then
    // slices; dropped, each goes back as it was made.
    let node = NodeMemory::new(crate::slot::Binder::default(), true);
    let reserved = Arena::new(&node);
    assert_eq!(reserved.reserve(MAX_CHUNK), MAX_CHUNK);
    let _blocks = fill(&reserved, 0);
    assert_eq!(reserved.chunk_sizes()[0], MAX_CHUNK);
    assert_eq!(reserved.reserved_left(), 0);
    assert_eq!(node.huge_chunks().unwrap().starts().len(), 1);
}

#[test]
fn hot_words_start_zeroed_even_in_a_reused_piece() {
    let arena = Arena::default();
    // A frozen block's piece of the same size, freed: its bytes are not
    // zero, and the words reuse it.
    let frozen = arena.alloc(&bytes(10 * 8, 0xAB));
    let at = frozen.as_ptr() as usize;
    drop(frozen);
    let words = arena.alloc_words(10);
    assert_eq!(words.len(), 10);
    assert_eq!(
        words.as_ptr() as usize,
        at,
        "the freed piece is taken again"
    );
    let loaded: Vec<u64> = words.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    assert_eq!(loaded, [0; 10]);
    words[9].store(99, Ordering::Relaxed);
    let copy = words.clone();
    assert_eq!(
        copy[9].load(Ordering::Relaxed),
        99,
        "clones share the words"
    );
    assert_eq!(words.refs(), 2);
}

#[test]
fn unzeroed_words_read_zero_when_fresh_and_the_old_bytes_when_reused() {
    let arena = Arena::default();
    let fresh = arena.alloc_words_unzeroed(10);
    let loaded: Vec<u64> = fresh.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    assert_eq!(loaded, [0; 10], "a fresh chunk starts zeroed");
    let old = bytes(10 * 8, 0xAB);
    let frozen = arena.alloc(&old);
    let at = frozen.as_ptr() as usize;
    drop(frozen);
    let reused = arena.alloc_words_unzeroed(10);
    assert_eq!(
        reused.as_ptr() as usize,
        at,
        "the freed piece is taken again"
    );
    let loaded: Vec<u64> = reused.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    let expected: Vec<u64> = old
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(loaded, expected, "not zeroed: the freed block's bytes");
}

#[test]
fn hot_words_go_through_a_raw_pointer_and_back_with_their_count() {
    let arena = Arena::default();
    let words = arena.alloc_words(21);
    words[0].store(3, Ordering::Relaxed);
    let kept = words.clone();
    let raw = words.into_raw();
    assert_eq!(raw.addr() & 1, 0, "the lowest bit is free for a cell's tag");
    assert_eq!(
        HotWords::start_of_raw(raw) as usize + HEADER,
        kept.as_ptr() as usize,
        "the hint's target is the piece: its header, then the words"
    );
    assert_eq!(kept.refs(), 2, "the raw pointer holds its handle's count");
    // SAFETY: `raw` came from `into_raw`, taken back once here.
    let back = unsafe { HotWords::from_raw(raw) };
    assert_eq!(back.len(), 21);
    assert_eq!(back[0].load(Ordering::Relaxed), 3);
    drop(back);
    assert_eq!(kept.refs(), 1);
}

#[test]
fn pieces_released_into_a_batch_go_back_to_their_arenas_together() {
    // Two arenas' words, released interleaved (each change of arena sends
    // the gathered chain back), one still held elsewhere.
    let (a, b) = (Arena::default(), Arena::default());
    let of_a: Vec<HotWords> = (0..4).map(|_| a.alloc_words(6)).collect();
    let of_b: Vec<HotWords> = (0..2).map(|_| b.alloc_words(6)).collect();
    let held = of_a[3].clone();
    let addresses = |words: &[HotWords]| {
        let mut at: Vec<usize> = words.iter().map(|w| w.as_ptr() as usize).collect();
        at.sort_unstable();
        at
    };
    let (want_a, want_b) = (addresses(&of_a[..3]), addresses(&of_b));
    let mut batch = ReturnBatch::default();
    let (mut of_a, mut of_b) = (of_a.into_iter(), of_b.into_iter());
    for from_a in [true, true, false, true, true, false] {
        let words = if from_a { of_a.next() } else { of_b.next() };
        words.expect("six handles").release_into(&mut batch);
    }
    assert_eq!(held.refs(), 1, "a piece with another handle stays out");
    drop(batch);
    assert!(a.nothing_returned_pending() && b.nothing_returned_pending());
    // Each arena hands out its own pieces again, and only those.
    let again_a: Vec<HotWords> = (0..3).map(|_| a.alloc_words(6)).collect();
    let again_b: Vec<HotWords> = (0..2).map(|_| b.alloc_words(6)).collect();
    assert_eq!(addresses(&again_a), want_a);
    assert_eq!(addresses(&again_b), want_b);
}

#[test]
fn hot_words_freed_on_another_thread_return_to_their_arena() {
    let arena = Arena::default();
    let words = arena.alloc_words(33);
    let at = words.as_ptr() as usize;
    std::thread::scope(|s| {
        s.spawn(move || drop(words));
    });
    let again = arena.alloc_words(33);
    assert_eq!(again.as_ptr() as usize, at, "the freed piece is reused");
}

/// Live blocks' address ranges never overlap, and each holds its bytes.
fn assert_apart(blocks: &[(FrozenBlock, Vec<u8>)]) {
    let mut ranges: Vec<(usize, usize)> = blocks
        .iter()
        .map(|(b, want)| {
            assert_eq!(&**b, &want[..], "a live block keeps its bytes");
            (b.as_ptr() as usize - HEADER, b.as_ptr() as usize + b.len())
        })
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "pieces overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn pieces_of_random_sizes_freed_in_random_order_stay_apart_and_intact() {
    // A small generator (xorshift): the test needs no crate.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let arena = Arena::default();
    let mut live: Vec<(FrozenBlock, Vec<u8>)> = Vec::new();
    let steps = if cfg!(miri) { 400 } else { 20_000 };
    for step in 0..steps {
        if live.is_empty() || next(3) > 0 {
            let len = [8, 24, 100, 184, 1000, 4000][next(6)];
            let want = bytes(len, step as u8);
            live.push((arena.alloc(&want), want));
        } else {
            // Sometimes a run of frees, so that chunks empty.
            for _ in 0..1 + next(4) * next(50) {
                if live.is_empty() {
                    break;
                }
                live.swap_remove(next(live.len()));
            }
        }
        if step % 997 == 0 {
            assert_apart(&live);
        }
    }
    assert_apart(&live);
}
