//! `RawDtype::decode` against ml_dtypes (the library `onnx` uses for these types): every stored
//! pattern of the 8-, 4- and 2-bit types and every 251st bfloat16 pattern, from
//! `data/raw_dtypes.txt` (written by `data/make_raw_dtypes.py`).

use veil_ir::RawDtype;

#[test]
fn every_pattern_decodes_as_ml_dtypes_does() {
    let table = include_str!("data/raw_dtypes.txt");
    let mut seen = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let head = words.next().unwrap();
        let (name, step) = head.split_once('/').map_or((head, 1), |(n, s)| (n, s.parse::<u16>().unwrap()));
        let t = RawDtype::from_name(name).unwrap_or_else(|| panic!("{name} is a raw dtype"));
        let mut n = 0;
        for (i, w) in words.enumerate() {
            let want: f64 = w.parse().unwrap();
            let bits = i as u16 * step;
            let got = t.decode(bits);
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{name} pattern {bits:#x}: decoded {got}, ml_dtypes {want}"
            );
            if !want.is_nan() {
                assert_eq!(got.is_sign_negative(), want.is_sign_negative(), "{name} pattern {bits:#x}: sign of {want}");
            }
            n += 1;
        }
        assert!(n >= 4, "{name}: {n} patterns");
        seen.push(t);
    }
    assert_eq!(seen, RawDtype::ALL.to_vec(), "the table covers every type");
}
