//! The Arrow type grammar of a table's metadata (`types`, SPEC 5.6 [G1]): exactly what pyarrow's
//! `str(type)` prints. Rendering an arrow-rs type in it, and recognizing its sentences. Pure: no
//! I/O, no other module of the crate.

use arrow_schema::{DataType, Field, TimeUnit};

fn unit(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// A child field in a nested type: `NAME: T`, with ` not null` when it is not nullable.
fn child(f: &Field) -> Result<String, String> {
    Ok(format!(
        "{}: {}{}",
        f.name(),
        field_type_name(f)?,
        if f.is_nullable() { "" } else { " not null" }
    ))
}

/// The type of `field` in the grammar of the metadata file (what pyarrow's `str(type)` prints):
/// `Err` says why the type cannot be stored in a table (types whose buffers cannot be mapped, or
/// that the grammar does not name: maps, unions, list views, run-end encoded, intervals,
/// decimal32/64).
pub fn field_type_name(field: &Field) -> Result<String, String> {
    match field.data_type() {
        DataType::Dictionary(k, v) => Ok(format!(
            "dictionary<values={}, indices={}, ordered={}>",
            data_type_name(v)?,
            data_type_name(k)?,
            u8::from(field.dict_is_ordered().unwrap_or(false))
        )),
        dt => data_type_name(dt),
    }
}

/// [`field_type_name`] of a type without its field (a dictionary is unordered).
pub fn data_type_name(dt: &DataType) -> Result<String, String> {
    Ok(match dt {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        DataType::Decimal256(p, s) => format!("decimal256({p}, {s})"),
        DataType::Date32 => "date32[day]".into(),
        DataType::Date64 => "date64[ms]".into(),
        DataType::Time32(u) => format!("time32[{}]", unit(u)),
        DataType::Time64(u) => format!("time64[{}]", unit(u)),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        DataType::Duration(u) => format!("duration[{}]", unit(u)),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Utf8View => "string_view".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::BinaryView => "binary_view".into(),
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        DataType::Dictionary(k, v) => format!(
            "dictionary<values={}, indices={}, ordered=0>",
            data_type_name(v)?,
            data_type_name(k)?
        ),
        DataType::List(f) => format!("list<{}>", child(f)?),
        DataType::LargeList(f) => format!("large_list<{}>", child(f)?),
        DataType::FixedSizeList(f, n) => format!("fixed_size_list<{}>[{n}]", child(f)?),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| child(f))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        other => {
            return Err(format!(
                "{other} is not a table column type (the types are those whose buffers can be mapped: \
                 numbers, bool, decimal128/256, dates, times, timestamps, durations, strings, binary, \
                 dictionaries, lists, fixed-size lists and structs); cast the column first"
            ))
        }
    })
}

/// The rendered types of every field of `schema`, or `(column, why)` for the first that cannot
/// be stored.
pub fn schema_types(schema: &arrow_schema::Schema) -> Result<Vec<String>, (String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| field_type_name(f).map_err(|why| (f.name().clone(), why)))
        .collect()
}

/// Whether `t` is a type of the grammar, written exactly as pyarrow prints it ([G1]): the
/// canonical spelling only (no other spacing, no numpy names), precision of decimal128 1–38 and
/// of decimal256 1–76, integer dictionary indices.
pub fn is_type_name(t: &str) -> bool {
    let mut p = TypeParser { s: t, i: 0 };
    p.ty().is_some() && p.i == t.len()
}

struct TypeParser<'a> {
    s: &'a str,
    i: usize,
}

impl TypeParser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn need(&mut self, lit: &str) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A decimal integer without sign or leading zero.
    fn uint(&mut self) -> Option<u64> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        let d = &self.rest()[..digits];
        if d.is_empty() || (d.len() > 1 && d.starts_with('0')) {
            return None;
        }
        let v = d.parse().ok()?;
        self.i += digits;
        Some(v)
    }

    fn int(&mut self) -> Option<i64> {
        let neg = self.eat("-");
        let v = i64::try_from(self.uint()?).ok()?;
        Some(if neg { -v } else { v })
    }

    fn unit(&mut self, units: &[&str]) -> Option<()> {
        // Longest first: `ms` before `s`.
        let mut sorted = units.to_vec();
        sorted.sort_by_key(|u| std::cmp::Reverse(u.len()));
        sorted.into_iter().find(|u| self.eat(u)).map(|_| ())
    }

    /// A child field: `NAME: T` with an optional ` not null`.
    fn field(&mut self) -> Option<()> {
        let end = self.rest().find(": ")?;
        self.i += end + 2;
        self.ty()?;
        self.eat(" not null");
        Some(())
    }

    /// Returns whether the type is an integer (for dictionary indices).
    fn ty(&mut self) -> Option<bool> {
        const INTS: [&str; 8] = [
            "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        ];
        const SIMPLE: [&str; 14] = [
            "null",
            "bool",
            "halffloat",
            "float",
            "double",
            "date32[day]",
            "date64[ms]",
            "large_string",
            "string_view",
            "string",
            "large_binary",
            "binary_view",
            "binary",
            "decimal",
        ];
        for prefix in ["decimal128(", "decimal256("] {
            if self.eat(prefix) {
                let max = if prefix == "decimal128(" { 38 } else { 76 };
                let p = self.uint()?;
                self.need(", ")?;
                let sc = self.int()?;
                self.need(")")?;
                return ((1..=max).contains(&p) && sc.unsigned_abs() <= p).then_some(false);
            }
        }
        if self.eat("time32[") {
            self.unit(&["s", "ms"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("time64[") {
            self.unit(&["us", "ns"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("timestamp[") {
            self.unit(&["s", "ms", "us", "ns"])?;
            if self.eat(", tz=") {
                let end = self.rest().find(']')?;
                if end == 0 {
                    return None;
                }
                self.i += end;
            }
            self.need("]")?;
            return Some(false);
        }
        if self.eat("duration[") {
            self.unit(&["s", "ms", "us", "ns"])?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("fixed_size_binary[") {
            i32::try_from(self.uint()?).ok()?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("dictionary<values=") {
            self.ty()?;
            self.need(", indices=")?;
            if !self.ty()? {
                return None;
            }
            self.need(", ordered=")?;
            if !(self.eat("0") || self.eat("1")) {
                return None;
            }
            self.need(">")?;
            return Some(false);
        }
        for prefix in ["list<", "large_list<"] {
            if self.eat(prefix) {
                self.field()?;
                self.need(">")?;
                return Some(false);
            }
        }
        if self.eat("fixed_size_list<") {
            self.field()?;
            self.need(">[")?;
            i32::try_from(self.uint()?).ok()?;
            self.need("]")?;
            return Some(false);
        }
        if self.eat("struct<") {
            if self.eat(">") {
                return Some(false);
            }
            loop {
                self.field()?;
                if self.eat(">") {
                    return Some(false);
                }
                self.need(", ")?;
            }
        }
        // Integers: the longest name that matches and ends the token (`int8` is not `int80`).
        for name in INTS {
            if self.rest().starts_with(name) {
                let after = &self.rest()[name.len()..];
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    self.i += name.len();
                    return Some(true);
                }
            }
        }
        for name in SIMPLE.iter().filter(|n| **n != "decimal") {
            if self.rest().starts_with(name) {
                let after = &self.rest()[name.len()..];
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '[') {
                    self.i += name.len();
                    return Some(false);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn types_render_as_pyarrow_prints_them() {
        use arrow_schema::Fields;
        let f = |dt: DataType| data_type_name(&dt).unwrap();
        assert_eq!(f(DataType::Float16), "halffloat");
        assert_eq!(
            f(DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            )),
            "timestamp[ns, tz=UTC]"
        );
        assert_eq!(f(DataType::Decimal128(10, 2)), "decimal128(10, 2)");
        let item = Arc::new(Field::new("item", DataType::Int32, false));
        assert_eq!(
            f(DataType::List(item.clone())),
            "list<item: int32 not null>"
        );
        assert_eq!(
            f(DataType::FixedSizeList(item, 3)),
            "fixed_size_list<item: int32 not null>[3]"
        );
        let st = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        assert_eq!(f(st), "struct<a: int32, b: string>");
        let dict = Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8)),
            true,
        )
        .with_dict_is_ordered(true);
        assert_eq!(
            field_type_name(&dict).unwrap(),
            "dictionary<values=string, indices=uint8, ordered=1>"
        );
        assert!(data_type_name(&DataType::Interval(arrow_schema::IntervalUnit::DayTime)).is_err());
        for ok in [
            "double",
            "timestamp[ns, tz=UTC]",
            "decimal128(38, 2)",
            "dictionary<values=string, indices=uint8, ordered=1>",
            "list<item: int32 not null>",
            "fixed_size_list<item: int8>[3]",
            "struct<a: int32, b: list<item: string>>",
            "struct<>",
            "date32[day]",
            "time32[ms]",
        ] {
            assert!(is_type_name(ok), "{ok}");
        }
        for no in [
            "float64",
            "timestamp[us,tz=UTC]",
            "decimal128(39, 2)",
            "map<string, int32>",
            "dictionary<values=string, indices=double, ordered=0>",
            "int80",
            "list<item: int32",
            "time32[us]",
            "",
        ] {
            assert!(!is_type_name(no), "{no}");
        }
    }
}
