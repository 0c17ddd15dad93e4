//! Typed access to a node's attributes; errors name the attribute and what was wrong.

use super::proto::{AttributeProto, NodeProto, TensorProto, attribute_proto::AttributeType};

/// The attributes of one node.
pub struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Self { node }
    }

    fn get(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        let Some(a) = self.node.attribute.iter().find(|a| a.name() == name) else { return Ok(None) };
        // Old exporters leave `type` unset; trust the populated field then.
        if a.r#type.is_some() && a.r#type() != want {
            return Err(format!("attribute {name} must be {}, got {}", want.as_str_name(), a.r#type().as_str_name()));
        }
        Ok(Some(a))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.get(name, AttributeType::Int)?.map(|a| a.i()))
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self.get(name, AttributeType::Float)?.map(|a| a.f()))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self.get(name, AttributeType::Floats)?.map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => {
                String::from_utf8(a.s().to_vec()).map(Some).map_err(|_| format!("attribute {name} is not UTF-8"))
            }
        }
    }

    /// A list of strings (`activations`), each UTF-8.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        let Some(a) = self.get(name, AttributeType::Strings)? else { return Ok(None) };
        let decode = |s: &Vec<u8>| String::from_utf8(s.clone()).map_err(|_| format!("attribute {name} is not UTF-8"));
        a.strings.iter().map(decode).collect::<Result<_, _>>().map(Some)
    }

    /// Whether the node has attribute `name`, of any type.
    pub fn has(&self, name: &str) -> bool {
        self.node.attribute.iter().any(|a| a.name() == name)
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, String> {
        Ok(self.get(name, AttributeType::Tensor)?.and_then(|a| a.t.as_ref()))
    }

    /// A non-negative integer list attribute as `usize`s.
    pub fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>, String> {
        self.ints(name)?
            .map(|v| {
                v.iter()
                    .map(|&x| {
                        usize::try_from(x).map_err(|_| format!("attribute {name} must be non-negative, got {v:?}"))
                    })
                    .collect()
            })
            .transpose()
    }
}
