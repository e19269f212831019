use super::*;

fn canon(t: &str) -> String {
    Descr::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .as_str()
        .to_string()
}

fn refused(t: &str) -> String {
    match Descr::parse(t) {
        Ok(d) => panic!("{t} was accepted as {d}"),
        Err(e) => e.reason,
    }
}

/// What numpy writes comes back unchanged, with its size.
#[test]
fn numpy_descrs_are_canonical() {
    for (t, size) in [
        ("'<f8'", 8),
        ("'|u1'", 1),
        ("'|b1'", 1),
        ("'<f2'", 2),
        ("'<c16'", 16),
        ("'<M8[us]'", 8),
        ("'<M8[ns]'", 8),
        ("'<m8[10ms]'", 8),
        ("'<M8'", 8),
        ("'|S5'", 5),
        ("'<U3'", 12),
        ("'>i4'", 4),
        ("'|V8'", 8),
        ("[('a', '<i4'), ('b', '<f4')]", 8),
        ("[('t', '<u8'), ('x', '<f4'), ('', '|V4')]", 16),
        (
            "[('pos', [('x', '<f4'), ('y', '<f4')]), ('v', '<f8', (3,))]",
            32,
        ),
        ("[(('Time', 't'), '<M8[ns]'), ('m', '<f4', (2, 3))]", 32),
        ("('<f4', (3,))", 12),
        ("([('a', '|u1')], (2, 2))", 4),
        ("[('', '|V8')]", 8),
        ("[('it\\'s', '<i4'), ('back\\\\slash', '<i4')]", 8),
        ("[('température', '<f8')]", 8),
    ] {
        let d = Descr::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!((d.as_str(), d.size()), (t, size));
    }
}

/// Other spellings of one layout become the canonical text.
#[test]
fn spellings_are_normalised() {
    let n = NATIVE;
    for (t, want) in [
        ("\"<f8\"", "'<f8'".to_string()),
        ("'f8'", format!("'{n}f8'")),
        ("'=i2'", format!("'{n}i2'")),
        ("'|f8'", format!("'{n}f8'")),
        ("'<u1'", "'|u1'".into()),
        ("'>b1'", "'|b1'".into()),
        ("'a4'", "'|S4'".into()),
        ("'<M8[1us]'", "'<M8[us]'".into()),
        ("'<M8[generic]'", "'<M8'".into()),
        (
            " [ ( 'a' , '<i4' ) ,('b','<f4',) , ] ",
            "[('a', '<i4'), ('b', '<f4')]".into(),
        ),
        (
            "[('a', '<f4', 3), ('b', '<f4', (2,3,))]",
            "[('a', '<f4', (3,)), ('b', '<f4', (2, 3))]".into(),
        ),
        (
            "[('a', '|u1'), ('', '|V1'), ('', '|V2'), ('b', '<i4')]",
            "[('a', '|u1'), ('', '|V3'), ('b', '<i4')]".into(),
        ),
        (
            "[('a', '|u1'), ('', '|V1', (3,))]",
            "[('a', '|u1'), ('', '|V3')]".into(),
        ),
        ("('<f4', 3)", "('<f4', (3,))".into()),
    ] {
        assert_eq!(canon(t), want, "{t}");
        assert_eq!(canon(&want), want, "canonical text is a fixed point");
    }
}

#[test]
fn nonsense_is_refused_with_its_place() {
    for (t, why) in [
        ("", "expected a type string"),
        ("'<f8", "closing quote"),
        ("'<f8' x", "text after"),
        ("'O'", "Python objects"),
        ("'|O8'", "Python objects"),
        ("'<i3'", "no such size"),
        ("'<f'", "expected a number"),
        ("'<M8[xs]'", "unknown datetime unit"),
        ("'<M8[0us]'", "multiplier of 0"),
        ("'<f8[us]'", "unexpected text"),
        ("'<T'", "not a kind"),
        ("[]", "without fields"),
        ("[('a', '<i4'), ('a', '<f4')]", "used twice"),
        ("[(('a', 'b'), '<i4'), ('a', '<f4')]", "used twice"),
        ("[('', '<i4')]", "only a gap"),
        ("[('a', '<i4', (0,))]", "dimension of 0"),
        ("[('a', '<i4', ())]", "empty shape"),
        ("[('a\u{1b}', '<i4')]", "control character"),
        ("[('a\\n', '<i4')]", "an escape"),
        ("[('a' '<i4')]", "expected ','"),
        ("[('a', ('<i4', (2,)))]", "expected a type string or a list"),
        ("'|S4294967296'", "too large"),
        ("[('a', '|V4294967295'), ('b', '|u1')]", "4 GiB"),
        ("('|V65536', (65536, 2))", "4 GiB"),
    ] {
        let reason = refused(t);
        assert!(reason.contains(why), "{t}: {reason:?} lacks {why:?}");
    }
    let e = Descr::parse("[('a', '<i4'), ('b', '<q8')]").unwrap_err();
    assert_eq!(e.at, 21);
}

/// Hostile inputs stay bounded: a long text, deep nesting, many dimensions.
#[test]
fn limits_hold() {
    assert!(refused(&"x".repeat(DESCR_MAX + 1)).contains("more than"));
    let deep = format!("{}'<i4'{}", "[('a', ".repeat(40), ")]".repeat(40));
    assert!(refused(&deep).contains("nested deeper"));
    let ok = format!(
        "{}'<i4'{}",
        "[('a', ".repeat(DEPTH_MAX),
        ")]".repeat(DEPTH_MAX)
    );
    assert_eq!(Descr::parse(&ok).map(|d| d.size()), Ok(4));
    let dims = format!("[('a', '|u1', ({}))]", "1, ".repeat(DIMS_MAX + 1));
    assert!(refused(&dims).contains("dimensions"));
    // Thousands of fields, and a name repeated at the end of them.
    let many: Vec<String> = (0..3000).map(|i| format!("('f{i}', '|u1')")).collect();
    let text = format!("[{}]", many.join(", "));
    assert!(text.len() < DESCR_MAX);
    assert_eq!(Descr::parse(&text).map(|d| d.size()), Ok(3000));
    let again = format!("[{}, ('f7', '<f8')]", many.join(", "));
    assert!(refused(&again).contains("\"f7\" used twice"));
}

#[test]
fn primitives_describe_themselves() {
    for p in Primitive::ALL {
        let d = Descr::primitive(p);
        assert_eq!(d.size(), p.size() as usize);
        assert_eq!(Descr::parse(d.as_str()).as_ref(), Ok(&d), "{p}");
    }
    assert_eq!(
        Descr::primitive(Primitive::F32).as_str(),
        format!("'{NATIVE}f4'")
    );
}
