//! The element types a header can name.

/// The element types the header names by a code (so that `u32`, `i32` and `f32`, all four
/// bytes, are told apart, and tools like the CLI know how to print them). Any other
/// [`Pod`](bytemuck::Pod) type is recorded as code 0 and told apart by size, alignment,
/// [schema tag](crate::Options::schema) and, where both sides give one, its
/// [description](crate::Options::descr). Every primitive has a description of its own
/// ([`Descr::primitive`](crate::Descr::primitive)).
///
/// ```
/// use shmchan::Primitive;
/// assert_eq!(Primitive::of::<f32>(), Some(Primitive::F32));
/// assert_eq!(Primitive::of::<[u8; 3]>(), None);
/// assert_eq!("i16".parse::<Primitive>(), Ok(Primitive::I16));
/// assert_eq!(Primitive::F64.size(), 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Primitive {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Primitive {
    /// All of them, in code order.
    pub const ALL: [Primitive; 10] = [
        Primitive::U8,
        Primitive::I8,
        Primitive::U16,
        Primitive::I16,
        Primitive::U32,
        Primitive::I32,
        Primitive::U64,
        Primitive::I64,
        Primitive::F32,
        Primitive::F64,
    ];

    /// The primitive `T` is, if it is one.
    pub fn of<T: 'static>() -> Option<Primitive> {
        use std::any::TypeId;
        let t = TypeId::of::<T>();
        let ids = [
            TypeId::of::<u8>(),
            TypeId::of::<i8>(),
            TypeId::of::<u16>(),
            TypeId::of::<i16>(),
            TypeId::of::<u32>(),
            TypeId::of::<i32>(),
            TypeId::of::<u64>(),
            TypeId::of::<i64>(),
            TypeId::of::<f32>(),
            TypeId::of::<f64>(),
        ];
        ids.iter()
            .position(|id| *id == t)
            .map(|i| Primitive::ALL[i])
    }

    /// The header code (1..=10).
    pub(crate) fn code(self) -> u32 {
        Primitive::ALL.iter().position(|p| *p == self).unwrap_or(0) as u32 + 1
    }

    pub(crate) fn from_code(code: u32) -> Option<Primitive> {
        (code as usize)
            .checked_sub(1)
            .and_then(|i| Primitive::ALL.get(i).copied())
    }

    /// Size in bytes.
    pub fn size(self) -> u32 {
        match self {
            Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        }
    }

    /// The Rust name: `"u8"`, `"f64"`, ...
    pub fn name(self) -> &'static str {
        [
            "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64",
        ][self.code() as usize - 1]
    }
}

impl std::fmt::Display for Primitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Primitive {
    type Err = String;
    fn from_str(s: &str) -> Result<Primitive, String> {
        Primitive::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown element type {s:?} (one of u8 i8 u16 i16 u32 i32 u64 i64 f32 f64)")
            })
    }
}
