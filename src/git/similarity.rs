//! How similar two files are, as git's rename detection measures it (`diffcore-delta.c` and
//! `estimate_similarity` in `diffcore-rename.c`).
//!
//! A file is cut into spans that end at a newline or after 64 bytes, whichever comes first
//! (a CR before an LF is skipped in text files); each span is hashed into one of 107,927
//! buckets and the bucket counts the span's bytes. The bytes "copied" from source to
//! destination are, summed over buckets, the smaller of the two counts; the score is copied
//! bytes × [`MAX_SCORE`] / the larger file's size, truncated. A pair whose sizes differ too
//! much for the minimum score is not hashed at all. Only regular files (not symlinks or
//! submodules) are compared; they may still be exact renames.

/// git's `MAX_SCORE`: a score of 100 %.
pub const MAX_SCORE: u32 = 60_000;
/// git's `DEFAULT_RENAME_SCORE`: the 50 % a rename needs by default.
pub const DEFAULT_RENAME_SCORE: u32 = 30_000;
/// git's `HASHBASE`: the number of span buckets.
const HASHBASE: u32 = 107_927;

/// The span counts of one file: (bucket, bytes) sorted by bucket, each bucket once.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    counts: Vec<(u32, u64)>,
}

impl Spans {
    /// Hashes `data` as git's `hash_chars` does; `is_text` is git's "not binary" for the file
    /// (CR before LF is ignored only in text).
    pub fn of(data: &[u8], is_text: bool) -> Spans {
        let mut spans: Vec<(u32, u64)> = Vec::with_capacity(data.len() / 16 + 1);
        let (mut accum1, mut accum2): (u32, u32) = (0, 0);
        let mut n: u64 = 0;
        let mut i = 0;
        while i < data.len() {
            let c = data[i];
            i += 1;
            if is_text && c == b'\r' && data.get(i) == Some(&b'\n') {
                continue;
            }
            let old1 = accum1;
            accum1 = (accum1 << 7) ^ (accum2 >> 25);
            accum2 = (accum2 << 7) ^ (old1 >> 25);
            accum1 = accum1.wrapping_add(u32::from(c));
            n += 1;
            if n < 64 && c != b'\n' {
                continue;
            }
            spans.push((bucket(accum1, accum2), n));
            n = 0;
            accum1 = 0;
            accum2 = 0;
        }
        if n > 0 {
            spans.push((bucket(accum1, accum2), n));
        }
        spans.sort_unstable_by_key(|s| s.0);
        let mut counts: Vec<(u32, u64)> = Vec::with_capacity(spans.len());
        for (h, n) in spans {
            match counts.last_mut() {
                Some(last) if last.0 == h => last.1 += n,
                _ => counts.push((h, n)),
            }
        }
        Spans { counts }
    }

    /// git's `diffcore_count_changes`: how many bytes of `dst` were copied from `self`.
    pub fn copied_into(&self, dst: &Spans) -> u64 {
        let mut d = dst.counts.iter().peekable();
        let mut copied = 0;
        for &(sh, sc) in &self.counts {
            while d.next_if(|(dh, _)| *dh < sh).is_some() {}
            if let Some((_, dc)) = d.next_if(|(dh, _)| *dh == sh) {
                copied += sc.min(*dc);
            }
        }
        copied
    }
}

fn bucket(accum1: u32, accum2: u32) -> u32 {
    accum1.wrapping_add(accum2.wrapping_mul(0x61)) % HASHBASE
}

/// git's size pre-check in `estimate_similarity`: false when the sizes alone rule out
/// reaching `minimum_score`, so the contents need not be read. (git computes in floating
/// point because `MAX_SCORE` is a double there; so does this.)
pub fn sizes_may_reach(src_size: u64, dst_size: u64, minimum_score: u32) -> bool {
    let max = src_size.max(dst_size) as f64;
    let delta = (src_size.max(dst_size) - src_size.min(dst_size)) as f64;
    let max_score = f64::from(MAX_SCORE);
    max * (max_score - f64::from(minimum_score)) >= delta * max_score
}

/// The score of a pair whose sizes passed [`sizes_may_reach`]: copied bytes over the larger
/// size, scaled to [`MAX_SCORE`] and truncated, as git's `(int)(src_copied * MAX_SCORE /
/// max_size)`.
pub fn score(src: &Spans, src_size: u64, dst: &Spans, dst_size: u64) -> u32 {
    if dst_size == 0 {
        return 0;
    }
    let max = src_size.max(dst_size) as f64;
    (src.copied_into(dst) as f64 * f64::from(MAX_SCORE) / max) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_copies_everything() {
        let a = Spans::of(b"one\ntwo\nthree\n", true);
        assert_eq!(a.copied_into(&a), 14);
        assert_eq!(score(&a, 14, &a, 14), MAX_SCORE);
    }

    #[test]
    fn crlf_counts_as_lf_in_text_only() {
        let lf = Spans::of(b"line\n", true);
        let crlf = Spans::of(b"line\r\n", true);
        assert_eq!(lf.copied_into(&crlf), 5);
        let crlf_bin = Spans::of(b"line\r\n", false);
        assert_eq!(lf.copied_into(&crlf_bin), 0);
    }

    #[test]
    fn long_lines_are_cut_every_64_bytes() {
        let data = [b'x'; 130];
        let s = Spans::of(&data, true);
        // two 64-byte spans with the same hash and one of 2 bytes
        assert_eq!(s.counts.iter().map(|c| c.1).sum::<u64>(), 130);
        assert_eq!(s.counts.len(), 2);
    }

    #[test]
    fn the_size_check_matches_gits_inequality() {
        // 50 %: a file may at most double.
        assert!(sizes_may_reach(100, 200, DEFAULT_RENAME_SCORE));
        assert!(!sizes_may_reach(100, 201, DEFAULT_RENAME_SCORE));
        assert!(!sizes_may_reach(0, 1, DEFAULT_RENAME_SCORE));
        assert!(sizes_may_reach(0, 0, DEFAULT_RENAME_SCORE));
    }
}
