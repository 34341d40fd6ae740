//! Settings that place the rotation function in a VPC.

use std::net::Ipv4Addr;

use super::{invalid, ConfigError};

/// Maximum number of subnets in a function's VPC configuration (Lambda API
/// reference, `VpcConfig.SubnetIds`).
const MAX_SUBNETS: usize = 16;

/// The VPC that the function runs in, and the endpoints it reaches there.
#[derive(Debug, Clone, PartialEq)]
pub struct VpcSettings {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub subnet_ids: Vec<String>,
    /// Existing Secrets Manager interface endpoint, or `None` to create one.
    pub secretsmanager_endpoint_id: Option<String>,
    /// Existing interface endpoint of the cluster's DSQL service, or `None` to create one.
    pub dsql_endpoint_id: Option<String>,
    /// PrivateLink service name of the cluster, or `None` until
    /// `privatelink::with_service_name` looks it up.
    pub dsql_service_name: Option<String>,
}

/// VPC settings as read, before validation.
#[derive(Debug, Default)]
pub struct RawVpc {
    pub vpc_id: Option<String>,
    pub vpc_cidr: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub secretsmanager_endpoint_id: Option<String>,
    pub dsql_endpoint_id: Option<String>,
    pub dsql_service_name: Option<String>,
}

impl RawVpc {
    /// Validates the VPC settings and returns `None` when no VPC is configured.
    pub fn validate(self, region: &str) -> Result<Option<VpcSettings>, ConfigError> {
        let Some(vpc_id) = self.vpc_id else {
            self.reject_without_vpc()?;
            return Ok(None);
        };
        let vpc_id = validate_id("vpc_id", vpc_id, "vpc")?;

        let subnet_ids = match self.subnet_ids {
            Some(ids) if !ids.is_empty() => validate_subnets(ids)?,
            _ => {
                return Err(ConfigError::Missing {
                    field: "subnet_ids",
                    fix: format!("list the private subnets of {vpc_id} that the function and the endpoints use, one per Availability Zone"),
                })
            }
        };
        let vpc_cidr = match self.vpc_cidr {
            Some(cidr) => validate_cidr(cidr)?,
            None => {
                return Err(ConfigError::Missing {
                    field: "vpc_cidr",
                    fix: format!("set `vpc_cidr` to the IPv4 CIDR block of {vpc_id}, for example 10.0.0.0/16; the function's egress and the endpoints' ingress are limited to it"),
                })
            }
        };

        let dsql_service_name = self
            .dsql_service_name
            .map(|name| validate_service_name(name, region))
            .transpose()?;

        Ok(Some(VpcSettings {
            vpc_id,
            vpc_cidr,
            subnet_ids,
            secretsmanager_endpoint_id: self
                .secretsmanager_endpoint_id
                .map(|id| validate_id("secretsmanager_endpoint_id", id, "vpce"))
                .transpose()?,
            dsql_endpoint_id: self
                .dsql_endpoint_id
                .map(|id| validate_id("dsql_endpoint_id", id, "vpce"))
                .transpose()?,
            dsql_service_name,
        }))
    }

    /// Rejects settings that only make sense inside a VPC.
    fn reject_without_vpc(&self) -> Result<(), ConfigError> {
        let fix = |field: &str| {
            format!("set `vpc_id` to the VPC that `{field}` belongs to, or remove `{field}`")
        };
        if let Some(ids) = &self.subnet_ids {
            return Err(invalid("subnet_ids", ids.join(","), fix("subnet_ids")));
        }
        let singles = [
            ("vpc_cidr", &self.vpc_cidr),
            (
                "secretsmanager_endpoint_id",
                &self.secretsmanager_endpoint_id,
            ),
            ("dsql_endpoint_id", &self.dsql_endpoint_id),
            ("dsql_service_name", &self.dsql_service_name),
        ];
        for (field, value) in singles {
            if let Some(value) = value {
                return Err(invalid(field, value, fix(field)));
            }
        }
        Ok(())
    }
}

/// Validates an EC2 id: `<prefix>-` and 8 or 17 lowercase hex digits.
fn validate_id(field: &'static str, id: String, prefix: &str) -> Result<String, ConfigError> {
    let digits = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'));
    let valid = digits.is_some_and(|digits| {
        matches!(digits.len(), 8 | 17)
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if !valid {
        let fix = format!("use an id of the form {prefix}-0123456789abcdef0");
        return Err(invalid(field, id, fix));
    }
    Ok(id)
}

fn validate_subnets(ids: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if ids.len() > MAX_SUBNETS {
        return Err(invalid(
            "subnet_ids",
            ids.join(","),
            format!("list at most {MAX_SUBNETS} subnets, the most Lambda accepts"),
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = validate_id("subnet_ids", id, "subnet")?;
        if unique.contains(&id) {
            return Err(invalid("subnet_ids", id, "list each subnet once"));
        }
        unique.push(id);
    }
    Ok(unique)
}

/// Validates an IPv4 CIDR block with a prefix that a VPC may have, /16 to /28.
fn validate_cidr(cidr: String) -> Result<String, ConfigError> {
    let fix = "use the VPC's IPv4 CIDR block, an address and a prefix from /16 to /28, such as 10.0.0.0/16";
    let Some((address, prefix)) = cidr.split_once('/') else {
        return Err(invalid("vpc_cidr", cidr, fix));
    };
    let address: Option<Ipv4Addr> = address.parse().ok();
    let prefix: Option<u32> = prefix
        .parse()
        .ok()
        .filter(|prefix| (16..=28).contains(prefix));
    let (Some(address), Some(prefix)) = (address, prefix) else {
        return Err(invalid("vpc_cidr", cidr, fix));
    };

    let host_bits = u32::from(address) & (u32::MAX >> prefix);
    if host_bits != 0 {
        let network = Ipv4Addr::from(u32::from(address) & !(u32::MAX >> prefix));
        let fix = format!("use the network address of the block, {network}/{prefix}");
        return Err(invalid("vpc_cidr", cidr, fix));
    }
    Ok(cidr)
}

/// Validates a cluster's PrivateLink service name, `com.amazonaws.<region>.dsql-<id>`.
pub fn validate_service_name(name: String, region: &str) -> Result<String, ConfigError> {
    let prefix = format!("com.amazonaws.{region}.dsql-");
    let id = name.strip_prefix(&prefix).unwrap_or_default();
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid {
        let fix = format!("use the cluster's service name, {prefix}<id>, from `aws dsql get-vpc-endpoint-service-name`; it is not the control-plane service com.amazonaws.{region}.dsql");
        return Err(invalid("dsql_service_name", name, fix));
    }
    Ok(name)
}
