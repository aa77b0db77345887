//! Conversion between `serde` types and [`Value`].

use rmpv::Value;
use serde::{Serialize, de::DeserializeOwned};

/// Why a value could not be converted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

/// Converts a `serde` value into a [`Value`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    rmpv::ext::to_value(value).map_err(|e| ValueError(e.to_string()))
}

/// Converts a [`Value`] into a `serde` value.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    rmpv::ext::from_value(value).map_err(|e| ValueError(e.to_string()))
}
