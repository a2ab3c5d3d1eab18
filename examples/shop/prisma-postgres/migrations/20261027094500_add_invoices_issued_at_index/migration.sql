-- CreateIndex
CREATE INDEX "invoices_issued_at_idx" ON "invoices"("issued_at");
