//! Engine reports to Python, through one generic function. Every report the engine returns
//! (`ArrayInfo`, `Holder`, `GcReport`, `FsckReport`, `Removal`, `ImportReport`, …) is
//! `serde::Serialize`; [`to_python`] serializes it to a JSON value and builds the Python objects
//! `json.loads` would (dict, list, str, int, float, bool, None). So the keys Python sees are the
//! ones `dafctl --json` prints, field for field, and no field is copied by hand here. The typed
//! Python classes (`dafstore.ArrayInfo`, …) are built from these dicts in `_container.py`, which
//! checks that their fields are exactly these keys.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// `value` as the Python objects of its JSON form.
pub(crate) fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot serialize an engine report: {e}")))?;
    json_to_python(py, &json)
}

fn json_to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (k, v) in fields {
                dict.set_item(k, json_to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
