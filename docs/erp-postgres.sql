-- Views for finance users on the ERP database `meltano run tap-precoro target-erp-postgres`
-- loads (docs/erp-postgres.md). Run once after the first load, and again after changing
-- target-erp-postgres' flattening settings:
--
--   psql "$ERP_DATABASE_URL" -f docs/erp-postgres.sql
--
-- Views read the tables as they are at query time, so every later load shows through
-- them at once. They assume meltano.yml's config: schema `precoro`, flattening depth 1
-- (supplier -> supplier__id, supplier__name), and lines kept as each document's JSON
-- `items` array.

-- One row per document line of purchase orders, invoices, credit notes (invoices with
-- logicType 1 or 5), receipts and expenses.
CREATE OR REPLACE VIEW precoro.document_lines AS
WITH documents AS (
    SELECT 'purchase order' AS document_type, id, idn, "statusString", "approvalDate",
           supplier__id, supplier__name, location__name, currency, items
    FROM precoro.purchaseorders
    UNION ALL
    SELECT CASE WHEN "logicType" IN (1, 5) THEN 'credit note' ELSE 'invoice' END,
           id, idn, "statusString", "approvalDate",
           supplier__id, supplier__name, location__name, currency, items
    FROM precoro.invoices
    UNION ALL
    SELECT 'receipt', id, idn, "statusString", "approvalDate",
           supplier__id, supplier__name, location__name, NULL, items
    FROM precoro.receipts
    UNION ALL
    SELECT 'expense', id, idn, "statusString", "approvalDate",
           supplier__id, supplier__name, location__name, currency, items
    FROM precoro.expenses
)
SELECT
    d.document_type,
    d.id AS document_id,
    d.idn AS document_idn,
    d."statusString" AS document_status,
    d."approvalDate" AS approval_date,
    d.supplier__id AS supplier_id,
    d.supplier__name AS supplier_name,
    d.location__name AS location_name,
    line.position AS line_number,
    (line.value ->> 'id')::bigint AS line_id,
    (line.value -> 'item' ->> 'id')::bigint AS item_id,
    line.value -> 'item' ->> 'sku' AS item_sku,
    line.value ->> 'name' AS description,
    (line.value ->> 'quantity')::numeric AS quantity,
    (line.value ->> 'price')::numeric AS unit_price,
    (line.value ->> 'sum')::numeric AS line_total,
    COALESCE(line.value ->> 'currency', d.currency) AS currency,
    line.value -> 'dataItemCustomFields' AS item_custom_fields
FROM documents AS d
CROSS JOIN LATERAL jsonb_array_elements(COALESCE(d.items::jsonb, '[]'::jsonb))
    WITH ORDINALITY AS line(value, position);

-- Spend per supplier and currency, from approved invoice lines (status 2).
CREATE OR REPLACE VIEW precoro.invoice_spend_by_supplier AS
SELECT
    l.supplier_id,
    l.supplier_name,
    l.currency,
    count(DISTINCT l.document_id) AS invoices,
    sum(l.line_total) AS net_total
FROM precoro.document_lines AS l
JOIN precoro.invoices AS i ON i.id = l.document_id
WHERE l.document_type = 'invoice' AND i.status = 2
GROUP BY l.supplier_id, l.supplier_name, l.currency;
