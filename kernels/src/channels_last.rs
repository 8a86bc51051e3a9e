//! Copies of NCHW images in channels-last order (HWC), with AVX-512 16x16
//! transposes, for kernels that vectorise over channels.

/// Channels, rows and columns per transposed block.
pub(crate) const BLOCK: usize = 16;

/// Copies one image `planes` (`[channels, rows, cols]`) into `out` as
/// `[rows + 2 * pad, cols + 2 * pad, channels]`, with a border of `pad`
/// zero pixels. `channels` and `cols` must be multiples of 16 and `out`
/// must contain exactly the padded image.
///
/// # Panics
/// When the lengths do not match those sizes.
pub(crate) fn copy(planes: &[f32], (rows, cols): (usize, usize), pad: usize, out: &mut [f32]) {
    let channels = planes.len() / (rows * cols);
    assert_eq!(planes.len(), channels * rows * cols);
    assert!(channels.is_multiple_of(BLOCK));
    assert!(cols.is_multiple_of(BLOCK));
    let width = cols + 2 * pad;
    assert_eq!(out.len(), (rows + 2 * pad) * width * channels);

    // The border: whole rows at the top and bottom, pixels at the sides.
    let row_len = width * channels;
    out[..pad * row_len].fill(0.0);
    out[(pad + rows) * row_len..].fill(0.0);
    for row in out[pad * row_len..(pad + rows) * row_len].chunks_exact_mut(row_len) {
        row[..pad * channels].fill(0.0);
        row[(pad + cols) * channels..].fill(0.0);
    }

    for first_channel in (0..channels).step_by(BLOCK) {
        for y in 0..rows {
            for x in (0..cols).step_by(BLOCK) {
                let source = (first_channel * rows + y) * cols + x;
                let target = ((y + pad) * width + x + pad) * channels + first_channel;
                // The last source row starts 15 planes further, the last
                // target pixel 15 pixels further.
                assert!(source + (BLOCK - 1) * rows * cols + BLOCK <= planes.len());
                assert!(target + (BLOCK - 1) * channels + BLOCK <= out.len());
                // SAFETY: `applies()` of every caller checked AVX-512F, and
                // the asserts above keep every load and store in bounds.
                unsafe {
                    transpose_block(
                        planes[source..].as_ptr(),
                        rows * cols,
                        out[target..].as_mut_ptr(),
                        channels,
                    )
                };
            }
        }
    }
}

/// Transposes the 16x16 block whose row `i` is the 16 elements at
/// `source + i * source_stride` into rows at `target + j * target_stride`.
///
/// # Safety
/// AVX-512F; all 16 source rows readable and all 16 target rows writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_block(
    source: *const f32,
    source_stride: usize,
    target: *mut f32,
    target_stride: usize,
) {
    use std::arch::x86_64::*;
    let mut rows = [_mm512_setzero_ps(); BLOCK];
    for (i, row) in rows.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the 16 rows are readable.
        *row = unsafe { _mm512_loadu_ps(source.add(i * source_stride)) };
    }

    // Interleave pairs of rows, then pairs of pairs, within 128-bit lanes:
    // afterwards row 4q + p contains, in each lane l, elements 4l + p of rows
    // 4q to 4q + 3.
    let mut pairs = [_mm512_setzero_ps(); BLOCK];
    for q in 0..BLOCK / 2 {
        pairs[2 * q] = _mm512_unpacklo_ps(rows[2 * q], rows[2 * q + 1]);
        pairs[2 * q + 1] = _mm512_unpackhi_ps(rows[2 * q], rows[2 * q + 1]);
    }
    let mut quads = [_mm512_setzero_ps(); BLOCK];
    for q in 0..BLOCK / 4 {
        let (a, b) = (
            _mm512_castps_pd(pairs[4 * q]),
            _mm512_castps_pd(pairs[4 * q + 1]),
        );
        let (c, d) = (
            _mm512_castps_pd(pairs[4 * q + 2]),
            _mm512_castps_pd(pairs[4 * q + 3]),
        );
        quads[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        quads[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        quads[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        quads[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Gather the lanes: column 4l + p comes from row p of each group of
    // four, lane l.
    for p in 0..4 {
        let [a, b, c, d] = [quads[p], quads[4 + p], quads[8 + p], quads[12 + p]];
        let even_ab = _mm512_shuffle_f32x4::<0x88>(a, b);
        let odd_ab = _mm512_shuffle_f32x4::<0xdd>(a, b);
        let even_cd = _mm512_shuffle_f32x4::<0x88>(c, d);
        let odd_cd = _mm512_shuffle_f32x4::<0xdd>(c, d);
        let columns = [
            (p, _mm512_shuffle_f32x4::<0x88>(even_ab, even_cd)),
            (8 + p, _mm512_shuffle_f32x4::<0xdd>(even_ab, even_cd)),
            (4 + p, _mm512_shuffle_f32x4::<0x88>(odd_ab, odd_cd)),
            (12 + p, _mm512_shuffle_f32x4::<0xdd>(odd_ab, odd_cd)),
        ];
        for (j, column) in columns {
            // SAFETY: the caller guarantees the 16 target rows are writable.
            unsafe { _mm512_storeu_ps(target.add(j * target_stride), column) };
        }
    }
}

/// Never called: the callers run only on x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_block(_: *const f32, _: usize, _: *mut f32, _: usize) {
    unreachable!("channels-last copies run only on x86-64")
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn copy_matches_index_formula() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let (channels, rows, cols, pad) = (32, 3, 32, 1);
        let planes: Vec<f32> = (0..channels * rows * cols).map(|i| i as f32).collect();
        let width = cols + 2 * pad;
        let mut out = vec![f32::NAN; (rows + 2 * pad) * width * channels];
        copy(&planes, (rows, cols), pad, &mut out);
        for y in 0..rows + 2 * pad {
            for x in 0..width {
                for c in 0..channels {
                    let inside = (pad..rows + pad).contains(&y) && (pad..cols + pad).contains(&x);
                    let expected = if inside {
                        planes[(c * rows + y - pad) * cols + x - pad]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        out[(y * width + x) * channels + c],
                        expected,
                        "({y}, {x}, {c})"
                    );
                }
            }
        }
    }
}
