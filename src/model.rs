//! Wire types: what the API returns, shared by the storage layer (which stores
//! idempotent responses) and the HTTP layer. Amounts serialise as exact decimals.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::{ser_cents, ser_milli, ser_opt_cents, Milli};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChargeResponse {
    pub transaction: ChargeTx,
    pub customer_info: CustomerInfo,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChargeTx {
    pub tx_id: String,
    pub tx_no: String,
    pub card_id: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub raw_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub final_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_milli")]
    pub discount: Milli,
    pub points_earned: i64,
    pub status: String,
    pub created_at: String,
    pub sync_state: String,
    /// This sale's receipt (`?format=text|html|json`).
    pub receipt_url: String,
}

/// Where a transaction's receipt is served.
pub fn receipt_url(tx_no: &str) -> String {
    format!("/api/v1/transactions/{tx_no}/receipt")
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerInfo {
    pub card_no: String,
    pub card_type: String,
    pub member_level: Option<i64>,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub balance_after: i64,
    pub points_after: i64,
    /// The card's level after this charge and the points to the next one.
    pub level: LevelInfo,
}

/// A counter top-up (`POST /merchant/topup`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopupResponse {
    pub topup: TopupTx,
    pub card: TopupCard,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopupTx {
    pub tx_id: String,
    /// `RCG-<site>-<n>`.
    pub tx_no: String,
    pub card_id: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub amount: i64,
    /// How the member paid: cash, wechat or alipay.
    pub payment_method: String,
    pub status: String,
    pub created_at: String,
    /// `pending` until central confirms it.
    pub sync_state: String,
    /// The manager whose PIN approved it, when one was needed.
    pub approved_by: Option<String>,
    pub receipt_url: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopupCard {
    pub card_no: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub balance_after: i64,
    pub points: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundResponse {
    pub refund: RefundTx,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub remaining_refundable: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundTx {
    pub refund_tx_id: String,
    pub refund_tx_no: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub refunded_amount: i64,
    pub original_tx_no: String,
    pub status: String,
    pub created_at: String,
    /// This refund's receipt.
    pub receipt_url: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    pub id: String,
    pub tx_no: String,
    pub tx_type: String,
    pub card_id: String,
    pub card_no: Option<String>,
    pub merchant_id: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub raw_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_milli")]
    pub discount_applied: Milli,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub final_amount: i64,
    pub points_earned: i64,
    pub status: String,
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "ser_opt_cents")]
    pub refunded_amount: Option<i64>,
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "ser_opt_cents")]
    pub remaining_refundable: Option<i64>,
    pub original_tx_no: Option<String>,
    pub reason: Option<String>,
    pub payment_method: String,
    pub external_order_id: Option<String>,
    #[schema(value_type = Object)]
    pub tag: serde_json::Value,
    pub operator: Option<String>,
    pub device_id: Option<String>,
    pub sync_state: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pagination {
    pub limit: i64,
    pub offset: i64,
    pub total_count: i64,
    pub current_page: i64,
    pub page_size: i64,
    pub total_pages: i64,
    pub has_next: bool,
    pub has_prev: bool,
}

impl Pagination {
    pub fn new(limit: i64, offset: i64, total_count: i64) -> Self {
        let limit = limit.max(1);
        Pagination {
            limit,
            offset,
            total_count,
            current_page: offset / limit + 1,
            page_size: limit,
            total_pages: (total_count + limit - 1) / limit,
            has_next: offset + limit < total_count,
            has_prev: offset > 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionList {
    pub transactions: Vec<TransactionView>,
    pub pagination: Pagination,
    /// Counts and sums of every matching row, across all pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<ListTotals>,
}

/// What a filtered transaction list adds up to (refunds as positive amounts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListTotals {
    pub count: i64,
    pub payment_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub payment_amount: i64,
    pub refund_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub refund_amount: i64,
    /// Payments less refunds.
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub net_amount: i64,
    /// Counter top-ups among the rows: money in, not sales (not in `net_amount`).
    pub topup_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub topup_amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DailySummary {
    pub date: String,
    pub timezone: String,
    pub summary: SummaryTotals,
    pub hourly_stats: Vec<HourStat>,
}

#[derive(Debug, Clone, Serialize, Default, ToSchema)]
pub struct SummaryTotals {
    pub total_count: i64,
    pub payment_count: i64,
    pub refund_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub payment_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub refund_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub net_amount: i64,
    pub unique_cards: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub average_ticket: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HourStat {
    pub hour: u32,
    pub count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub refund_amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrValidateResponse {
    pub valid: bool,
    pub card_id: String,
    pub card_info: CardInfo,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardInfo {
    pub card_no: String,
    pub card_type: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub balance: i64,
    pub status: String,
    pub member_level: Option<i64>,
    pub points: i64,
    /// The card's level, its discount and the points to the next level.
    pub level: LevelInfo,
}

/// A card's membership level as a till shows it to the member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelInfo {
    pub level: i64,
    /// The level's name (central's `membership_levels.name`); null when unknown here.
    pub name: Option<String>,
    /// The card's points-level discount: 0.950 = 5 % off.
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_milli")]
    pub discount: Milli,
    /// The next level up; null at the top.
    pub next_level: Option<NextLevelInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextLevelInfo {
    pub level: i64,
    pub name: String,
    pub min_points: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_milli")]
    pub discount: Milli,
    /// Points still to earn to reach it.
    pub points_needed: i64,
}

impl From<crate::domain::levels::Standing> for LevelInfo {
    fn from(s: crate::domain::levels::Standing) -> Self {
        LevelInfo {
            level: s.level,
            name: s.name,
            discount: s.discount,
            next_level: s.next.map(|n| NextLevelInfo {
                level: n.level,
                name: n.name,
                min_points: n.min_points,
                discount: n.discount,
                points_needed: n.points_needed,
            }),
        }
    }
}

/// A card as the counter sees it (`GET /merchant/cards/{card_no}`, freeze, unfreeze).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardView {
    pub card_no: String,
    pub card_type: String,
    /// Central's card status as this edge holds it: `inactive` = frozen.
    pub status: String,
    /// Available balance here (central's balance less unsynced local charges).
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub balance: i64,
    pub points: i64,
    pub level: LevelInfo,
    /// This store's freeze, while the card is frozen by it; null otherwise (a card
    /// frozen by head office has status `inactive` and no freeze here).
    pub freeze: Option<CardFreeze>,
    /// Operations on this card not yet sent to central.
    pub pending_ops: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardFreeze {
    pub frozen_at: String,
    pub frozen_by: String,
    pub reason: String,
}

/// One membership level (`GET /levels`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelView {
    pub level: i64,
    pub name: String,
    pub min_points: i64,
    /// Null: no upper bound.
    pub max_points: Option<i64>,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_milli")]
    pub discount: Milli,
    pub is_active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelList {
    pub levels: Vec<LevelView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub role: String,
    pub permissions: Vec<String>,
}
